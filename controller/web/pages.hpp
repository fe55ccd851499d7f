#pragma once
// The dashboard's pages, rendered on the server from the same messages the StatusService
// sends (pure: messages in, HTML out). Every text a board or an operator chose (a board's
// name, a message, a check's detail) goes through escape(); the pages have no inline script
// or style, and the server forbids both (Content-Security-Policy), so a `<script>` in a board
// name stays text twice over. Live updates: each page names its event stream in
// <body data-live>, and /static/fleet.js rewrites the cells marked data-field in the row
// marked data-board, with textContent.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/fleet.pb.h"

namespace fleet::web {

// & < > " ' as entities: safe in text and in quoted attributes.
std::string escape(std::string_view text);

// "/boards/pi%2D1": a path segment with everything but [A-Za-z0-9._~-] percent-encoded.
std::string url_segment(std::string_view text);

// `since_ms`: when the page's data was read; its event stream starts there, so nothing that
// changes between the page and the stream is lost.
// `models`: which boards hold which model files (a table of each file, by content, and the
// boards holding it), as ListModels gives them.
std::string fleet_page(const fleet::v1::StatusSnapshot& snapshot, std::int64_t since_ms,
                       const fleet::v1::ListModelsResponse& models = fleet::v1::ListModelsResponse());

std::string rollout_page(const fleet::v1::RolloutStatus& rollout, std::int64_t since_ms);

// One report of a board's history, as the board page charts and lists it.
struct HistoryPoint {
  std::int64_t at_ms = 0;
  std::string rollout_id;
  std::string phase;
  std::string kernel_release;
  int checks = 0, failed = 0;
  std::string failed_names;  // "thp, numa_nodes"
  double tokens_per_s = 0;   // 0: not measured in this report
  std::string shape;
  std::string message;
};
std::string board_page(const std::string& board, const fleet::v1::BoardStatus* latest,
                       const std::vector<HistoryPoint>& history, std::int64_t since_ms);

std::string login_page(std::string_view next, bool failed);
std::string not_found_page(std::string_view what);

// The JSON the board page's chart reads: [{"t": ms, "v": tokens/s, "k": release}, ...].
std::string chart_points(const std::vector<HistoryPoint>& history);

extern const std::string_view k_stylesheet;  // /static/fleet.css
extern const std::string_view k_script;      // /static/fleet.js

}  // namespace fleet::web
