#pragma once
// GET /metrics: the fleet in Prometheus' text format, made at each scrape from the state
// database (through the same StatusSnapshot the StatusService sends), so it is as current as
// `fleetctl status` and holds no series for a board the database no longer has.
// Names follow Prometheus' conventions: a `fleet_` prefix, base units in the name (bytes per
// second, seconds, celsius), `_total` on counters, `_info` for an info metric whose labels
// are the value.
#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "proto/fleet.pb.h"

namespace fleet::web {

// The controller process, read from /proc/self at each scrape (prometheus-cpp has no process
// collector; these are the names the client libraries that have one use).
struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the epoch
  double open_fds = 0;
  double max_fds = 0;
};
Result<ProcessStats> read_process_stats();

// What the HTTP server counts between scrapes.
struct ServerCounters {
  std::uint64_t http_requests = 0;
  std::uint64_t http_refused = 0;  // without the token
  std::uint64_t scrapes = 0;
};

// `snapshot` holds every board's latest row and the recent rollouts with their boards.
// `process` null: /proc could not be read, and the process_* series are left out.
std::string render_metrics(const fleet::v1::StatusSnapshot& snapshot, const ProcessStats* process,
                           const ServerCounters& counters);

}  // namespace fleet::web
