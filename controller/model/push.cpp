#include "controller/model/push.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>

#include "common/hash.hpp"
#include "common/text.hpp"
#include "controller/inventory/inventory.hpp"
#include "controller/store/store.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"
#include "node-agent/model/holdings.hpp"
#include "node-agent/model/swarm.hpp"

namespace fleet::model {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* k_remote_tool = "/usr/local/bin/fleet-model";
constexpr const char* k_remote_libs = "/usr/local/lib/fleet-model";

std::string human(std::int64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

// One board through the push. Its states, in order; each ends in an outcome or the next.
//   setup      connect, inspect, tools, certificate (a worker thread; the only thread on it)
//   waiting    set up, fetch not started yet
//   fetching   fleet-model fetch runs; its lines come in (the main loop's thread from now)
//   complete   the file is in place; it still serves the others until the end
//   finished   an outcome, nothing runs
enum class State : std::uint8_t { setup, waiting, fetching, complete, finished };

struct Board {
  const inventory::Host* host = nullptr;
  ssh::Endpoint endpoint;
  std::unique_ptr<ssh::Session> ssh;
  std::unique_ptr<ssh::Stream> stream;
  State state = State::setup;
  BoardResult result;
  std::string remote_dir;  // the push's files on the board
  std::string listen;      // fleet_model_listen
  std::string dial;        // ADDR:PORT the others dial, once it listens
  std::int64_t done = 0, down_rate = 0;
  Clock::time_point started{};
  bool listening = false;
};

Result<json> json_line(std::string_view line, const std::string& who) {
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event")) {
    return fail(Errc::parse, who + ": fleet-model printed something that is not one of its JSON events: '" +
                                 std::string(line.substr(0, 200)) + "'");
  }
  return j;
}

// The one JSON event a short fleet-model command prints.
Result<json> one_event(ssh::Session& s, const std::vector<std::string>& argv, const std::string& who) {
  auto r = FLEET_TRY(s.run(argv, 600s));
  std::optional<json> last;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) last = FLEET_TRY(json_line(line, who));
  }
  if (last && last->value("event", "") == "error") {
    return fail(r.exit_status == 2 ? Errc::invalid_input : Errc::process_failed,
                who + ": fleet-model " + argv[1] + ": " + last->value("message", "?"));
  }
  if (r.exit_status != 0 || !last) {
    return fail(Errc::process_failed, who + ": fleet-model " + argv[1] + " exited with status " +
                                          std::to_string(r.exit_status) + (r.err.empty() ? "" : ": " + r.err.substr(0, 300)));
  }
  return *last;
}

// Writes `data` to DIR/NAME on the board, private from its first byte.
Result<void> write_private(ssh::Session& s, const std::string& dir, const std::string& name, const std::string& data) {
  auto stream = FLEET_TRY(s.start({"sh", "-c", "umask 077 && mkdir -p \"$1\" && cat > \"$1/$2.part\" && mv -f \"$1/$2.part\" \"$1/$2\"",
                                   "sh", dir, name}));
  FLEET_TRY(stream->write(data));
  FLEET_TRY(stream->close_stdin());
  const auto until = Clock::now() + 60s;
  while (Clock::now() < until) {
    auto status = FLEET_TRY(stream->pump(200ms, {}));
    if (!status) continue;
    if (*status != 0) {
      return fail(Errc::process_failed, "board " + s.endpoint().name + ": cannot write " + dir + "/" + name + ": " +
                                            stream->stderr_text());
    }
    return {};
  }
  return fail(Errc::timeout, "board " + s.endpoint().name + ": writing " + dir + "/" + name + " took over 60 s");
}

// fleet-model and its libraries on the board, as the tools folder has them for its arch.
Result<void> ensure_tools(ssh::Session& s, const std::filesystem::path& tools) {
  const std::string uname = FLEET_TRY(s.check({"uname", "-m"}, 30s));
  const std::string arch(text::trim(uname));
  const auto dir = tools / arch;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir / "bin" / "fleet-model", ec)) {
    return fail(Errc::not_found, "board " + s.endpoint().name + " is " + arch + ", and " +
                                     (dir / "bin" / "fleet-model").string() + " is not there (--board-tools)");
  }
  std::vector<std::pair<std::filesystem::path, std::string>> files{{dir / "bin" / "fleet-model", k_remote_tool}};
  for (const auto& e : std::filesystem::directory_iterator(dir / "lib" / "fleet-model", ec)) {
    if (e.is_regular_file()) files.emplace_back(e.path(), std::string(k_remote_libs) + "/" + e.path().filename().string());
  }
  FLEET_TRY(s.check({"mkdir", "-p", "/usr/local/bin", k_remote_libs}, 30s));
  for (const auto& [local, remote] : files) {
    const auto want = FLEET_TRY(hash::sha256_file(local));
    auto have = FLEET_TRY(s.run({"sha256sum", remote}, 60s));
    if (have.exit_status == 0 && have.out.substr(0, 64) == want) continue;
    FLEET_TRY(s.upload(local, remote));
    FLEET_TRY(s.check({"chmod", "0755", remote}, 30s));
  }
  return {};
}

}  // namespace

const char* outcome_name(BoardOutcome o) {
  switch (o) {
    case BoardOutcome::complete: return "complete";
    case BoardOutcome::held: return "held";
    case BoardOutcome::no_room: return "no_room";
    case BoardOutcome::failed: return "failed";
    case BoardOutcome::unreachable: return "unreachable";
  }
  return "?";
}

int PushSummary::failed() const {
  return static_cast<int>(std::count_if(boards.begin(), boards.end(), [](const BoardResult& b) {
    return b.outcome != BoardOutcome::complete && b.outcome != BoardOutcome::held;
  }));
}

Result<std::int64_t> parse_bytes(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = used ? text.substr(used) : "";
  double mult = 0;
  if (unit.empty()) mult = 1;
  else if (unit == "k" || unit == "K") mult = 1e3;
  else if (unit == "M") mult = 1e6;
  else if (unit == "G") mult = 1e9;
  else if (unit == "Ki") mult = 1024.0;
  else if (unit == "Mi") mult = 1024.0 * 1024;
  else if (unit == "Gi") mult = 1024.0 * 1024 * 1024;
  if (used == 0 || mult == 0 || v < 0 || !std::isfinite(v) || v * mult > 9e18) {
    return fail(Errc::invalid_input, what + " must be a number of bytes, with k, M, G (powers of 1000) or Ki, Mi, Gi: got '" +
                                         text + "'");
  }
  return static_cast<std::int64_t>(std::llround(v * mult));
}

std::string progress_line(const FleetProgress& p) {
  std::ostringstream o;
  const int pct = p.total > 0 ? static_cast<int>(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) : 0;
  o << "model push: " << human(p.done) << " of " << human(p.total) << " (" << pct << "%), " << human(p.rate) << "/s, "
    << p.complete << " of " << p.boards << " boards complete";
  if (!p.slowest.empty() && p.complete < p.boards) {
    o << ", slowest " << p.slowest << " at " << static_cast<int>(100 * p.slowest_share) << "%";
  }
  return o.str();
}

Result<PushSummary> run_push(const PushOptions& o, std::ostream& out) {
  const auto started = Clock::now();
  auto inv = FLEET_TRY(inventory::load_inventory(o.inventory));
  auto hosts = FLEET_TRY(inventory::select(inv, o.limit));
  if (hosts.empty()) return fail(Errc::invalid_input, "--limit " + o.limit + " selects no board of " + o.inventory.string());
  const std::string name = o.file.filename().string();
  FLEET_TRY(check_name(name, o.file.string()));
  if (o.dest.empty() || o.dest.front() != '/') return fail(Errc::invalid_input, "--dest must be an absolute path, got '" + o.dest + "'");
  auto store = FLEET_TRY(store::Store::open(o.state_db));

  PushSummary summary;
  summary.id = "m" + std::to_string(store::now_ms() / 1000) + "-" + FLEET_TRY(tls::random_token()).substr(0, 6);
  summary.name = name;
  out << "model push " << summary.id << ": " << o.file.string() << " to " << hosts.size() << " boards, into " << o.dest
      << "\n" << std::flush;
  summary.sha256 = FLEET_TRY(hash::sha256_file(o.file));
  auto ca = FLEET_TRY(tls::PushAuthority::create(summary.id));
  int last_pct = -1;
  auto torrent = FLEET_TRY(make_torrent(o.file, ca.certificate_pem(), [&](int done, int total) {
    const int pct = 100 * done / std::max(1, total);
    if (o.live && pct != last_pct) out << "\rhashing pieces: " << pct << "%" << std::flush;
    last_pct = pct;
  }));
  if (o.live) out << "\r";
  summary.size = torrent.size;
  out << "sha256 " << summary.sha256 << ", " << human(torrent.size) << " in " << torrent.pieces << " pieces of "
      << human(torrent.piece_length) << "\n" << std::flush;

  // The controller's side of the swarm.
  auto me = FLEET_TRY(ca.issue_member(torrent.name, "fleetctl"));
  auto seed = FLEET_TRY(Swarm::start({o.listen, o.max_rate, 0, me.cert_pem, me.key_pem}));
  FLEET_TRY(seed->seed(torrent, std::filesystem::absolute(o.file).parent_path()));

  // Set up every board: bounded threads, each board on one of them only.
  std::vector<Board> boards(hosts.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    auto& b = boards[i];
    b.host = hosts[i];
    b.result.board = hosts[i]->name;
    b.endpoint = ssh::Endpoint{hosts[i]->name, hosts[i]->address, hosts[i]->port, hosts[i]->user, hosts[i]->key,
                               o.known_hosts, o.host_keys};
    b.remote_dir = o.dest + "/.fleet-models/push/" + summary.id;
    auto v = hosts[i]->vars.find("fleet_model_listen");
    b.listen = v != hosts[i]->vars.end() ? v->second : "0.0.0.0:6881";
  }
  std::atomic<std::size_t> next{0};
  std::mutex out_mu;
  auto setup = [&](Board& b) -> Result<void> {
    b.ssh = FLEET_TRY(ssh::Session::connect(b.endpoint));
    FLEET_TRY(ensure_tools(*b.ssh, o.board_tools));
    auto seen = FLEET_TRY(one_event(*b.ssh,
                                    {k_remote_tool, "inspect", "--dest", o.dest, "--name", name, "--size",
                                     std::to_string(torrent.size), "--sha256", summary.sha256},
                                    "board " + b.result.board));
    if (seen.value("holds", false)) {
      b.result.outcome = BoardOutcome::held;
      b.result.message = "holds it already";
      b.state = State::finished;
      return {};
    }
    const std::int64_t free = seen.value("free_bytes", std::int64_t{0});
    const std::int64_t partial = seen.value("partial_bytes", std::int64_t{0});
    const std::int64_t needed = std::max<std::int64_t>(0, torrent.size - partial);
    if (free < needed) {
      b.result.outcome = BoardOutcome::no_room;
      b.result.message = o.dest + " has " + human(free) + " free, the file needs " + human(needed) +
                         (partial > 0 ? " more (" + human(partial) + " of it is there from a cut-off push)" : "") +
                         ": nothing sent";
      b.state = State::finished;
      return {};
    }
    auto id = FLEET_TRY(ca.issue_member(torrent.name, b.result.board));
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "push.torrent", torrent.bytes));
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "board.crt", id.cert_pem));
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "board.key", id.key_pem));
    b.state = State::waiting;
    return {};
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < std::max(1, o.forks); ++w) {
    workers.emplace_back([&] {
      for (std::size_t i; (i = next++) < boards.size();) {
        auto& b = boards[i];
        if (auto r = setup(b); !r) {
          b.state = State::finished;
          b.result.outcome = r.error().code == Errc::unreachable ? BoardOutcome::unreachable : BoardOutcome::failed;
          b.result.message = r.error().message;
        }
        std::lock_guard lock(out_mu);
        if (b.state == State::finished) out << "  " << b.result.board << ": " << outcome_name(b.result.outcome) << ": " << b.result.message << "\n" << std::flush;
      }
    });
  }
  // The seed's session turns while boards are set up (a connection may come early).
  while (next < boards.size()) FLEET_TRY(seed->poll(100ms));
  for (auto& t : workers) t.join();
  for (auto& b : boards) {
    if (b.result.outcome == BoardOutcome::held) {
      FLEET_TRY(store->put_model({b.result.board, o.dest + "/" + name, name, summary.sha256, torrent.size, summary.id,
                                  store::now_ms()}));
    }
  }

  // Where boards dial the controller.
  std::string advertise = o.advertise;
  if (advertise.empty()) {
    auto [host, port] = FLEET_TRY(split_endpoint(o.listen, "--listen"));
    advertise = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host;
  }
  const std::string controller_at = advertise + ":" + std::to_string(seed->port());
  std::vector<std::string> dialable{controller_at};

  // Start every waiting board's fetch; the ones that listen are announced to the rest.
  const auto transfer_start = Clock::now();
  const int fetching = static_cast<int>(std::count_if(boards.begin(), boards.end(), [](const Board& b) { return b.state == State::waiting; }));
  int stripe = 0;
  for (auto& b : boards) {
    if (b.state != State::waiting) continue;
    std::string peers;
    for (const auto& d : dialable) peers += (peers.empty() ? "" : ",") + d;
    std::vector<std::string> argv{k_remote_tool, "fetch", "--torrent", b.remote_dir + "/push.torrent", "--cert",
                                  b.remote_dir + "/board.crt", "--key", b.remote_dir + "/board.key", "--dest", o.dest,
                                  "--sha256", summary.sha256, "--listen", b.listen, "--peer", peers,
                                  "--max-rate", std::to_string(o.board_max_rate)};
    if (!o.direct) {
      argv.push_back("--stripe");
      argv.push_back(std::to_string(stripe++) + "/" + std::to_string(fetching));
    }
    auto s = b.ssh->start(argv);
    if (!s) {
      b.state = State::finished;
      b.result.outcome = BoardOutcome::failed;
      b.result.message = s.error().message;
      continue;
    }
    b.stream = std::move(*s);
    b.state = State::fetching;
    b.started = Clock::now();
  }

  auto finish = [&](Board& b, BoardOutcome outcome, const std::string& message) {
    b.state = State::finished;
    b.result.outcome = outcome;
    b.result.message = message;
    if (b.stream) (void)b.stream->close_stdin();
    std::lock_guard lock(out_mu);
    out << (o.live ? "\r\033[K" : "") << "  " << b.result.board << ": " << outcome_name(outcome) << ": " << message << "\n"
        << std::flush;
  };
  auto last_print = Clock::now() - 10s;
  const auto deadline = transfer_start + o.timeout;
  for (;;) {
    FLEET_TRY(seed->poll(50ms));
    int running = 0;
    for (auto& b : boards) {
      if (b.state != State::fetching && b.state != State::complete) continue;
      auto status = b.stream->pump(0ms, [&](std::string_view line) {
        auto j = json_line(line, "board " + b.result.board);
        if (!j) return;
        const std::string event = j->value("event", "");
        if (event == "listening" && !b.listening) {
          b.listening = true;
          if (o.direct) return;  // nobody is told of it: every piece comes from the controller
          auto addr = b.host->vars.find("fleet_model_address");
          b.dial = addr != b.host->vars.end() ? addr->second : b.host->address + ":" + std::to_string(j->value("port", 0));
          // Every fetch started above: each board that listens is told to all the others.
          for (auto& other : boards) {
            if (&other == &b || !other.stream || other.state == State::finished) continue;
            (void)other.stream->write("peer " + b.dial + "\n");
          }
        } else if (event == "progress") {
          b.done = j->value("done", std::int64_t{0});
          b.down_rate = j->value("down_rate", std::int64_t{0});
        } else if (event == "complete") {
          b.state = State::complete;
          b.done = torrent.size;
          b.down_rate = 0;
          b.result.seconds = std::chrono::duration<double>(Clock::now() - b.started).count();
          b.result.outcome = BoardOutcome::complete;
          b.result.fetched = j->value("downloaded", std::int64_t{0});
          (void)store->put_model({b.result.board, j->value("path", o.dest + "/" + name), name, summary.sha256,
                                  torrent.size, summary.id, store::now_ms()});
        } else if (event == "error") {
          b.result.message = j->value("message", "");
        }
      });
      if (!status) {
        finish(b, BoardOutcome::unreachable, status.error().message);
        continue;
      }
      if (*status) {
        if (b.state == State::complete) {
          b.state = State::finished;  // stopped serving, as asked
          continue;
        }
        finish(b, BoardOutcome::failed,
               "fleet-model fetch exited with status " + std::to_string(**status) +
                   (b.result.message.empty() ? (b.stream->stderr_text().empty() ? "" : ": " + b.stream->stderr_text())
                                             : ": " + b.result.message));
        continue;
      }
      ++running;
    }
    FleetProgress fp;
    fp.boards = 0;
    double least = 2;
    for (const auto& b : boards) {
      if (!b.stream) continue;
      ++fp.boards;
      fp.total += torrent.size;
      fp.done += b.done;
      fp.rate += b.down_rate;
      if (b.result.outcome == BoardOutcome::complete) ++fp.complete;
      const double share = torrent.size > 0 ? static_cast<double>(b.done) / static_cast<double>(torrent.size) : 1;
      if (b.state == State::fetching && share < least) {
        least = share;
        fp.slowest = b.result.board;
        fp.slowest_share = share;
      }
    }
    bool all_done = true;
    for (const auto& b : boards) all_done = all_done && (b.state == State::complete || b.state == State::finished);
    if (Clock::now() - last_print >= (o.live ? 250ms : 5s) || all_done) {
      std::lock_guard lock(out_mu);
      out << (o.live ? "\r\033[K" : "") << progress_line(fp) << (o.live ? "" : "\n") << std::flush;
      last_print = Clock::now();
    }
    if (all_done || running == 0) break;
    if (Clock::now() > deadline) {
      for (auto& b : boards) {
        if (b.state == State::fetching) finish(b, BoardOutcome::failed, "not complete within --timeout; its verified pieces stay for the next push");
      }
      break;
    }
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - transfer_start).count();
  if (auto p = seed->poll(0ms)) summary.controller_sent = p->uploaded;
  // Every board stops serving; each must exit (bounded), then its push files go.
  for (auto& b : boards) {
    if (b.stream) (void)b.stream->close_stdin();
  }
  const auto stop_by = Clock::now() + 30s;
  for (auto& b : boards) {
    if (!b.stream) continue;
    while (b.state == State::complete && Clock::now() < stop_by) {
      auto status = b.stream->pump(100ms, {});
      if (!status || *status) b.state = State::finished;
    }
    b.stream.reset();
    if (b.ssh) (void)b.ssh->run({"rm", "-rf", b.remote_dir}, 30s);
  }
  if (o.live) out << "\n";
  for (auto& b : boards) summary.boards.push_back(b.result);
  (void)started;
  return summary;
}

}  // namespace fleet::model
