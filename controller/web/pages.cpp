#include "controller/web/pages.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <set>

#include "controller/status/status_service.hpp"
#include "common/text.hpp"
#include "controller/vocab/vocab.hpp"

namespace fleet::web {
namespace {

std::string utc(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// What a board's row says it is doing: its step while it works, its outcome when done.
std::string state_of(const fleet::v1::BoardStatus& b) {
  if (b.step() == vocab::name(vocab::Step::done)) return b.outcome().empty() ? "done" : b.outcome();
  return b.step();
}

// How a row looks: its CSS class. The same rules reach fleet.js through <body data-*>, so a
// row that changes live looks as it will after a reload.
enum class Tone { good, bad, busy, idle };

const char* name(Tone t) {
  switch (t) {
    case Tone::good: return "good";
    case Tone::bad: return "bad";
    case Tone::busy: return "busy";
    case Tone::idle: return "idle";
  }
  return "bad";
}

Tone tone_of(vocab::Step step, vocab::Outcome outcome) {
  if (step == vocab::Step::pending) return Tone::idle;
  if (step != vocab::Step::done) return Tone::busy;
  switch (outcome) {
    case vocab::Outcome::committed:
    case vocab::Outcome::skipped: return Tone::good;
    case vocab::Outcome::none:
    case vocab::Outcome::not_started: return Tone::idle;
    default: return Tone::bad;
  }
}

// From the message's words (the edge): a word this fleetctl does not know is bad.
Tone tone_of(const fleet::v1::BoardStatus& b) {
  auto step = vocab::step_from_name(b.step());
  auto outcome = vocab::outcome_from_name(b.outcome());
  if (!step || !outcome) return Tone::bad;
  return tone_of(*step, *outcome);
}

Tone tone_of_rollout(const std::string& state) {
  auto s = vocab::rollout_state_from_name(state);
  if (!s) return Tone::bad;
  switch (*s) {
    case vocab::RolloutState::done: return Tone::good;
    case vocab::RolloutState::stopped: return Tone::bad;
    case vocab::RolloutState::running:
    case vocab::RolloutState::dry_run: return Tone::busy;
  }
  return Tone::bad;
}

// The rules of tone_of as word lists, for fleet.js.
std::string tone_attributes() {
  std::string busy, good, idle;
  for (auto s : vocab::all_steps()) {
    if (tone_of(s, vocab::Outcome::none) == Tone::busy) busy += std::string(busy.empty() ? "" : " ") + vocab::name(s);
  }
  for (auto o : vocab::all_outcomes()) {
    const Tone t = tone_of(vocab::Step::done, o);
    const std::string n = vocab::name(o);
    if (t == Tone::good) good += (good.empty() ? "" : " ") + n;
    if (t == Tone::idle && !n.empty()) idle += (idle.empty() ? "" : " ") + n;
  }
  return " data-busy-steps=\"" + busy + "\" data-good-outcomes=\"" + good + "\" data-idle-outcomes=\"" + idle + "\"";
}

std::string page(std::string_view title, std::string live, std::int64_t since_ms, const std::string& body) {
  if (!live.empty()) live += std::string(live.find('?') == std::string::npos ? "?" : "&") + "since=" + std::to_string(since_ms);
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" + escape(title) + " - fleetctl</title>"
      "<link rel=\"stylesheet\" href=\"/static/fleet.css\">"
      "<script src=\"/static/chart.js\" defer></script>"
      "<script src=\"/static/fleet.js\" defer></script></head>\n"
      "<body data-live=\"" + escape(live) + "\"" + tone_attributes() + ">\n"
      "<header><a class=\"brand\" href=\"/\">fleetctl</a> <nav><a href=\"/\">fleet</a> "
      "<a href=\"/metrics\">metrics</a> <a href=\"/api/status\">json</a> "
      "<form method=\"post\" action=\"/logout\"><button>log out</button></form></nav>"
      "<span id=\"live\" class=\"live\">" + std::string(live.empty() ? "" : "connecting") + "</span></header>\n<main>\n";
  out += body;
  out += "</main>\n</body></html>\n";
  return out;
}

std::string checks_cells(const fleet::v1::BoardStatus& b) {
  std::string out;
  for (const auto& c : b.checks()) {
    if (c.property() == "bootloader") continue;  // its own column
    const std::string cls = !c.pass() ? "fail" : c.warning().empty() ? "pass" : "warn";
    std::string title = c.property() + ": expected " + c.expected() + ", got " + c.actual();
    if (!c.detail().empty()) title += " (" + c.detail() + ")";
    if (!c.warning().empty()) title += "; warning: " + c.warning();
    out += "<span class=\"check " + cls + "\" data-check=\"" + escape(c.property()) + "\" data-pass=\"" +
           (c.pass() ? "true" : "false") + "\" title=\"" + escape(title) + "\">" + escape(c.property()) + " " +
           (cls == "fail" ? "FAIL" : cls == "warn" ? "warn" : "ok") + "</span> ";
  }
  return out.empty() ? "<span class=\"idle\">no report</span>" : out;
}

std::string bootloader_of(const fleet::v1::BoardStatus& b) {
  for (const auto& c : b.checks())
    if (c.property() == "bootloader") return c.actual();
  return "";
}

std::string throughput_cells(const fleet::v1::BoardStatus& b) {
  if (!b.has_throughput() || b.throughput().tokens_per_s() <= 0) {
    return "<td data-label=\"tokens/s\" class=\"num\">-</td><td data-label=\"GB/s eff / read\" class=\"num\">-</td>"
           "<td data-label=\"board health\">-</td>";
  }
  const auto& t = b.throughput();
  std::string marks;
  if (t.has_temperature_c()) marks += std::string(t.temperature_c() >= 80 ? "<b class=\"bad\">" : "<span>") +
                                      fixed(t.temperature_c(), 0) + " C" + (t.temperature_c() >= 80 ? " HOT</b>" : "</span>");
  if (t.has_undervoltage() && t.undervoltage()) marks += " <b class=\"bad\">UNDER-VOLTAGE</b>";
  // How steady the figure is: one token's time, interquartile / median, over tokens timed.
  const std::string spread =
      t.tokens_timed() > 0 ? " <small title=\"spread of one token's time over " + std::to_string(t.tokens_timed()) +
                                 " tokens in " + fixed(t.seconds_timed(), 1) + " s\">&plusmn;" + fixed(100 * t.spread(), 0) + "%</small>"
                           : "";
  const auto change = controller::throughput_change(t);
  const std::string versus =
      change ? "<br><small class=\"" + std::string(*change < 0 ? "slower" : "faster") + "\" data-field=\"change\">" +
                   escape(controller::throughput_change_text(t)) + "</small>"
             : "";
  // Whether the kernel's THP backed the weights: under "madvise" weights without advice (as
  // llama.cpp's) get none, which is worth seeing next to the bandwidth they reached.
  const auto w = controller::weights_thp(t);
  const std::string thp =
      !w ? ""
         : "<br><small data-field=\"thp\" title=\"share of the probe's weights backed by transparent huge pages; their advice: " +
               w->advice + (w->advice == "none" ? " (as llama.cpp's)" : "") + "\">THP " + fixed(100 * w->share, 0) + "%</small>";
  return "<td data-label=\"tokens/s\" class=\"num\">" + fixed(t.tokens_per_s(), 2) + " <small>" + escape(t.shape()) + "</small>" +
         spread + versus + "</td>"
         "<td data-label=\"GB/s eff / read\" class=\"num\">" + fixed(t.effective_gbps(), 2) + " / " + fixed(t.read_gbps(), 2) +
         thp + "</td><td data-label=\"board health\">" +
         (marks.empty() ? "-" : marks) + "</td>";
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_segment(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {
// A model file by content: every board that holds the same bytes under that name.
std::string models_section(const fleet::v1::ListModelsResponse& models, const fleet::v1::StatusSnapshot& snap) {
  // "2 of 3": of every board known, in rollouts or holding a model.
  std::set<std::string> known;
  for (const auto& b : snap.boards()) known.insert(b.board());
  for (const auto& m : models.models()) known.insert(m.board());
  struct File {
    const fleet::v1::ModelHolding* first = nullptr;
    std::vector<const fleet::v1::ModelHolding*> holders;
    std::int64_t latest = 0;
  };
  std::map<std::pair<std::string, std::string>, File> files;  // (name, sha256), in ListModels' order
  for (const auto& m : models.models()) {
    File& f = files[{m.name(), m.sha256()}];
    if (!f.first) f.first = &m;
    f.holders.push_back(&m);
    f.latest = std::max(f.latest, m.updated_unix_ms());
  }
  std::string body = "<h2>Models</h2>\n";
  if (files.empty()) return body + "<p class=\"empty\">No model on any board yet: <code>fleetctl model push FILE</code> puts one there.</p>\n";
  body += "<div class=\"scroll\"><table id=\"models\"><thead><tr><th>model</th><th>size</th><th>sha256</th><th>boards</th>"
          "<th>last push</th></tr></thead><tbody>\n";
  for (const auto& [key, f] : files) {
    std::string boards;
    for (const auto* h : f.holders) {
      boards += (boards.empty() ? "" : ", ") + std::string("<a href=\"/boards/") + url_segment(h->board()) + "\">" +
                escape(h->board()) + "</a>";
    }
    const std::string count = std::to_string(f.holders.size()) + " of " + std::to_string(known.size());
    body += "<tr data-model=\"" + escape(key.first) + "\"><td>" + escape(key.first) + "</td><td>" + text::size_text(f.first->size_bytes()) +
            "</td><td><code title=\"" + escape(key.second) + "\">" + escape(key.second.substr(0, 12)) + "</code></td><td><b>" +
            count + "</b>: " + boards + "</td><td>" + utc(f.latest) + "</td></tr>\n";
  }
  return body + "</tbody></table></div>\n";
}
}  // namespace

std::string fleet_page(const fleet::v1::StatusSnapshot& snap, std::int64_t since_ms,
                       const fleet::v1::ListModelsResponse& models) {
  int good = 0, bad = 0, busy = 0;
  for (const auto& b : snap.boards()) {
    const Tone t = tone_of(b);
    good += t == Tone::good;
    bad += t == Tone::bad;
    busy += t == Tone::busy;
  }
  const int other = snap.boards_size() - good - bad - busy;
  std::string body = "<h1>Fleet <small>" + std::to_string(snap.boards_size()) + " boards: " + std::to_string(good) +
                     " updated, " + std::to_string(busy) + " updating, " + std::to_string(bad) + " failed" +
                     (other ? ", " + std::to_string(other) + " not started" : "") + "</small></h1>\n";
  body += "<div class=\"scroll\"><table id=\"boards\" class=\"cards\"><thead><tr><th>board</th><th>kernel</th><th>last update</th>"
          "<th>verification</th><th>tokens/s</th><th>GB/s eff / read</th><th>board health</th><th>bootloader</th>"
          "<th>last report</th><th>message</th></tr></thead><tbody>\n";
  for (const auto& b : snap.boards()) {
    const std::string st = state_of(b);
    body += "<tr data-board=\"" + escape(b.board()) + "\" class=\"" + name(tone_of(b)) + "\">"
            "<td data-label=\"board\"><a href=\"/boards/" + url_segment(b.board()) + "\">" + escape(b.board()) + "</a></td>"
            "<td data-label=\"kernel\" data-field=\"kernel\">" + escape(b.kernel_release()) + "</td>"
            "<td data-label=\"last update\"><span data-field=\"state\" class=\"state\">" + escape(st) + "</span> <small><a href=\"/rollouts/" +
            url_segment(b.rollout_id()) + "\">" + escape(b.rollout_id()) + "</a></small></td>"
            "<td data-label=\"verification\" class=\"checks\">" + checks_cells(b) + "</td>" + throughput_cells(b) +
            "<td data-label=\"bootloader\">" + escape(bootloader_of(b).empty() ? "-" : bootloader_of(b)) + "</td>"
            "<td data-label=\"last report\" data-field=\"report\">" + utc(b.last_report_unix_ms()) + "</td>"
            "<td data-label=\"message\" data-field=\"message\" class=\"message\">" + escape(b.message()) + "</td></tr>\n";
  }
  body += "</tbody></table></div>\n<h2>Rollouts</h2>\n<div class=\"scroll\"><table id=\"rollouts\"><thead><tr><th>rollout</th>"
          "<th>kernel</th><th>state</th><th>started</th><th>waves</th><th>why</th></tr></thead><tbody>\n";
  for (const auto& r : snap.rollouts()) {
    body += "<tr data-rollout=\"" + escape(r.id()) + "\" class=\"" + name(tone_of_rollout(r.state())) +
            "\"><td><a href=\"/rollouts/" + url_segment(r.id()) + "\">" + escape(r.id()) + "</a></td><td>" +
            escape(r.kernel_release()) + "</td><td>" + escape(r.state()) + "</td><td>" + utc(r.started_unix_ms()) +
            "</td><td>" + escape(r.serial()) + "</td><td class=\"message\">" + escape(r.message()) + "</td></tr>\n";
  }
  body += "</tbody></table></div>\n";
  body += models_section(models, snap);
  return page("fleet", "/events", since_ms, body);
}

std::string rollout_page(const fleet::v1::RolloutStatus& r, std::int64_t since_ms) {
  std::map<int, std::vector<const fleet::v1::BoardStatus*>> waves;
  for (const auto& b : r.boards()) waves[b.wave()].push_back(&b);
  std::string body = "<h1>Rollout " + escape(r.id()) + "</h1>\n<dl class=\"facts\">"
                     "<dt>kernel</dt><dd>" + escape(r.kernel_release()) + "</dd>"
                     "<dt>state</dt><dd><b data-field=\"rollout-state\" class=\"state\">" + escape(r.state()) + "</b></dd>"
                     "<dt>gate</dt><dd data-field=\"rollout-message\">" +
                     escape(r.message().empty() ? "every wave so far within --max-fail " + r.max_fail() : r.message()) +
                     "</dd><dt>waves</dt><dd>" + escape(r.serial()) + " (max-fail " + escape(r.max_fail()) + ")</dd>"
                     "<dt>started</dt><dd>" + utc(r.started_unix_ms()) + "</dd>"
                     "<dt>signed by</dt><dd>" + escape(r.signed_by().empty() ? "-" : r.signed_by()) + "</dd></dl>\n";
  for (const auto& [wave, boards] : waves) {
    int done = 0;
    for (auto* b : boards) done += b->step() == vocab::name(vocab::Step::done);
    body += "<section class=\"wave\" data-wave=\"" + std::to_string(wave) + "\"><h2>Wave " + std::to_string(wave + 1) +
            (wave == 0 ? " (canary)" : "") + " <small><span data-field=\"wave-done\">" + std::to_string(done) +
            "</span> of " + std::to_string(boards.size()) + " finished</small></h2>"
            "<progress max=\"" + std::to_string(boards.size()) + "\" value=\"" + std::to_string(done) + "\"></progress>\n"
            "<div class=\"scroll\"><table class=\"cards\"><thead><tr><th>board</th><th>step</th><th>outcome</th><th>kernel</th>"
            "<th>verification</th><th>message</th></tr></thead><tbody>\n";
    for (auto* b : boards) {
      body += "<tr data-board=\"" + escape(b->board()) + "\" class=\"" + name(tone_of(*b)) + "\"><td data-label=\"board\"><a href=\"/boards/" +
              url_segment(b->board()) + "\">" + escape(b->board()) + "</a></td><td data-label=\"step\" data-field=\"step\" class=\"state\">" +
              escape(b->step()) + "</td><td data-label=\"outcome\" data-field=\"outcome\">" + escape(b->outcome().empty() ? "-" : b->outcome()) +
              "</td><td data-label=\"kernel\" data-field=\"kernel\">" + escape(b->kernel_release()) + "</td><td data-label=\"verification\" class=\"checks\">" +
              checks_cells(*b) + "</td><td data-label=\"message\" data-field=\"message\" class=\"message\">" + escape(b->message()) +
              "</td></tr>\n";
    }
    body += "</tbody></table></div></section>\n";
  }
  if (waves.empty()) body += "<p>No boards.</p>\n";
  return page("rollout " + r.id(), "/events?rollout=" + url_segment(r.id()), since_ms, body);
}

std::string chart_points(const std::vector<HistoryPoint>& history) {
  nlohmann::json pts = nlohmann::json::array();
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (it->tokens_per_s > 0) pts.push_back({{"t", it->at_ms}, {"v", it->tokens_per_s}, {"k", it->kernel_release}});
  }
  return pts.dump();
}

std::string board_page(const std::string& board, const fleet::v1::BoardStatus* latest,
                       const std::vector<HistoryPoint>& history, std::int64_t since_ms) {
  std::string body = "<h1>Board " + escape(board) + "</h1>\n";
  if (latest) {
    body += "<div class=\"scroll\"><table><tbody><tr data-board=\"" + escape(board) + "\" class=\"" +
            name(tone_of(*latest)) + "\"><th>now</th><td data-field=\"kernel\">" +
            escape(latest->kernel_release()) + "</td><td><span data-field=\"state\" class=\"state\">" +
            escape(state_of(*latest)) + "</span></td><td class=\"checks\">" + checks_cells(*latest) + "</td>" +
            throughput_cells(*latest) + "<td data-field=\"message\" class=\"message\">" + escape(latest->message()) +
            "</td></tr></tbody></table></div>\n";
  }
  body += "<h2>Tokens per second over time</h2>\n<div class=\"chart\"><canvas id=\"chart\" role=\"img\" "
          "aria-label=\"tokens per second of each report\" data-points=\"" + escape(chart_points(history)) +
          "\"></canvas></div>\n<h2>History</h2>\n<div class=\"scroll\"><table id=\"history\"><thead><tr><th>when</th>"
          "<th>rollout</th><th>report</th><th>kernel</th><th>checks</th><th>tokens/s</th><th>message</th></tr></thead><tbody>\n";
  for (const auto& h : history) {
    body += "<tr class=\"" + std::string(h.failed ? "bad" : "") + "\"><td>" + utc(h.at_ms) + "</td><td><a href=\"/rollouts/" +
            url_segment(h.rollout_id) + "\">" + escape(h.rollout_id) + "</a></td><td>" + escape(h.phase) + "</td><td>" +
            escape(h.kernel_release) + "</td><td>" +
            (h.checks == 0 ? std::string("-")
                           : std::to_string(h.checks - h.failed) + " of " + std::to_string(h.checks) + " pass" +
                                 (h.failed ? " (failed: " + escape(h.failed_names) + ")" : "")) +
            "</td><td class=\"num\">" + (h.tokens_per_s > 0 ? fixed(h.tokens_per_s, 2) + " <small>" + escape(h.shape) + "</small>" : "-") +
            "</td><td class=\"message\">" + escape(h.message) + "</td></tr>\n";
  }
  if (history.empty()) body += "<tr><td colspan=\"7\">No report from this board yet.</td></tr>\n";
  body += "</tbody></table></div>\n";
  return page("board " + board, "/events", since_ms, body);
}

std::string login_page(std::string_view next, bool failed) {
  std::string body = "<h1>Log in</h1>\n<form class=\"login\" method=\"post\" action=\"/login\">"
                     "<p>The status token is in <code>status.token</code> beside the state database "
                     "(<code>fleetctl serve</code> prints its path).</p>";
  if (failed) body += "<p class=\"bad\" id=\"login-error\">That token is not this controller's.</p>";
  body += "<label>token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" "
          "required autofocus></label><input type=\"hidden\" name=\"next\" value=\"" + escape(next) +
          "\"><button id=\"login\">log in</button></form>\n";
  std::string out = page("log in", "", 0, body);
  return out;
}

std::string not_found_page(std::string_view what) {
  return page("not found", "", 0, "<h1>Not found</h1><p>" + escape(what) + "</p><p><a href=\"/\">the fleet</a></p>\n");
}

}  // namespace fleet::web
