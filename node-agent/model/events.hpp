#pragma once
// What fleet-model says: one JSON object per line on stdout, its "event" naming which of the
// types below it is. This file is the one codec of that schema: fleet-model writes with
// to_line, fleetctl (controller/model/push.cpp) reads with parse_line, so a field cannot be
// spelled one way on the board and another on the controller, and both see typed values.
//
// Why not proto/ and the fleet.v1 codec: fleet-model is linked dynamically against what a
// board has (Debian ships libtorrent only as a shared library, so the program cannot be
// static as the agent is), and Raspberry Pi OS has no libprotobuf. Linking protobuf's static
// library into it would work, but would grow a 260 KB program by megabytes of runtime for
// eight small messages; nlohmann's JSON is header-only and already linked. The lines cross
// one SSH channel between two builds of the same version (model push checks the board's
// fleet-model version or copies its own).
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "node-agent/model/holdings.hpp"

namespace fleet::model::event {

// fetch or seed listens: the TLS port its peers dial.
struct Listening {
  int port = 0;
  std::string name;
  std::int64_t size = 0;
};

struct PeerProgress {
  std::string endpoint;
  double progress = 0;  // 0 .. 1 of the pieces that peer has
};

// Once a second while it fetches or serves.
struct Progress {
  std::int64_t done = 0, total = 0;           // verified bytes
  std::int64_t down_rate = 0, up_rate = 0;    // bytes/s of payload
  std::int64_t uploaded = 0, downloaded = 0;  // payload since the start
  int hash_failures = 0;
  int banned = 0;
  std::vector<PeerProgress> peers;
};

// The file is whole, checked and in place (fetch); it goes on serving.
struct Complete {
  std::string name;
  std::string sha256;
  std::string path;
  int hash_failures = 0;
  int banned = 0;
  std::int64_t downloaded = 0;  // payload it took from peers
};

// inspect's answer.
struct Inspect {
  bool holds = false;
  std::int64_t free_bytes = 0;
  std::int64_t partial_bytes = 0;  // bytes a cut-off transfer of the same file left
};

// list's answer.
struct List {
  std::vector<Held> models;
};

// The command failed (its exit status says how); the words are also on stderr.
struct Failure {
  std::string message;
};

// Something went wrong that cost one peer, not the transfer.
struct Warning {
  std::string message;
};

// stdin closed before the file was complete (exit status 3): the verified pieces stay.
struct Stopped {
  std::string message;
};

using Event = std::variant<Listening, Progress, Complete, Inspect, List, Failure, Warning, Stopped>;

// "listening", "progress", ...: the value of the line's "event".
const char* name_of(const Event& e);

// One line, without its newline.
std::string to_line(const Event& e);

// A line fleet-model printed. `who` ("board pi-3") starts every error, which names the field
// that is missing or of the wrong type, or says the line is no event.
Result<Event> parse_line(std::string_view line, std::string_view who);

}  // namespace fleet::model::event
