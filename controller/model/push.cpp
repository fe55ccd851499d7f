#include "controller/model/push.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/hash.hpp"
#include "common/text.hpp"
#include "controller/inventory/inventory.hpp"
#include "controller/store/store.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"
#include "node-agent/model/events.hpp"
#include "node-agent/model/holdings.hpp"
#include "node-agent/model/swarm.hpp"

namespace fleet::model {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Where a copied fleet-model goes: fleetctl's own folder, off the PATH, so that it never
// shadows an installed one (the fleet-model package's /usr/bin/fleet-model). The layout is
// the board tools' (bin/, lib/fleet-model/), which its RUNPATH $ORIGIN/../lib/fleet-model
// expects.
constexpr const char* k_remote_tool = "/usr/local/lib/fleet-model/bin/fleet-model";
constexpr const char* k_remote_bin = "/usr/local/lib/fleet-model/bin";
constexpr const char* k_remote_libs = "/usr/local/lib/fleet-model/lib/fleet-model";
constexpr const char* k_installed_tool = "fleet-model";  // --board-tools installed: found on the board's PATH

// Sizes as the dashboard writes them; a count below 0 (none yet) as 0.
std::string human(std::int64_t bytes) { return text::size_text(static_cast<std::uint64_t>(std::max<std::int64_t>(0, bytes))); }

// One board through the push. Its states, in order; each ends in an outcome or the next.
//   setup      connect, inspect, tools, certificate (a worker thread; the only thread on it)
//   waiting    set up, fetch not started yet
//   fetching   fleet-model fetch runs; its lines come in (the main loop's thread from now)
//   complete   the file is in place; it still serves the others until the end
//   finished   an outcome, nothing runs
enum class State : std::uint8_t { setup, waiting, fetching, complete, finished };
enum class Event : std::uint8_t { set_up, concluded, started, completed, failed, stopped };

// Every move a board may make; anything else is a bug here, said (never a silent jump).
struct Move {
  State from;
  Event event;
  State to;
};
constexpr Move k_moves[] = {
    // from              event              to
    {State::setup,       Event::set_up,     State::waiting},   // certificate and torrent on it
    {State::setup,       Event::concluded,  State::finished},  // held, no room, or failed
    {State::waiting,     Event::started,    State::fetching},
    {State::waiting,     Event::failed,     State::finished},  // its fetch did not start
    {State::fetching,    Event::completed,  State::complete},  // the file is in place
    {State::fetching,    Event::failed,     State::finished},
    {State::complete,    Event::stopped,    State::finished},  // stopped serving (asked, or gone)
};

void move(State& state, Event event) {
  for (const auto& m : k_moves) {
    if (m.from == state && m.event == event) {
      state = m.to;
      return;
    }
  }
  throw std::logic_error("model push: no move from state " + std::to_string(static_cast<int>(state)) + " on event " +
                         std::to_string(static_cast<int>(event)));
}

struct Board {
  const inventory::Host* host = nullptr;
  ssh::Endpoint endpoint;
  std::unique_ptr<ssh::Session> ssh;
  std::unique_ptr<ssh::Stream> stream;
  State state = State::setup;
  BoardResult result;
  std::string remote_dir;  // the push's files on the board
  std::string tool = k_remote_tool;  // the fleet-model it runs
  std::string listen;      // fleet_model_listen
  std::string dial;        // ADDR:PORT the others dial, once it listens
  std::string address;     // its IP address (the inventory's, resolved here), or fleet_model_address's
  std::string controller;  // ADDR:PORT it dials for the controller
  std::int64_t done = 0, down_rate = 0;
  Clock::time_point started{};
  bool listening = false;
  bool written = false;    // the push's files (its key among them) are on the board
};

// `host` as one IPv4 or IPv6 address (an inventory may name boards by host name; the boards
// dial each other by address, and fleet-model takes addresses only).
Result<std::string> resolve(const std::string& host, const std::string& who) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0 || !res) {
    return fail(Errc::invalid_input, who + ": cannot resolve '" + host + "': " + ::gai_strerror(rc));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  const void* addr = res->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
  ::inet_ntop(res->ai_family, addr, buf, sizeof buf);
  ::freeaddrinfo(res);
  return std::string(buf);
}

std::string with_port(const std::string& ip, int port) {
  return (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// The one event a short fleet-model command prints, which must be a T.
template <class T>
Result<T> one_event(ssh::Session& s, const std::vector<std::string>& argv, const std::string& who) {
  auto r = FLEET_TRY(s.run(argv, 600s));
  std::optional<event::Event> last;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) last = FLEET_TRY(event::parse_line(line, who));
  }
  if (const auto* e = last ? std::get_if<event::Failure>(&*last) : nullptr) {
    return fail(r.exit_status == 2 ? Errc::invalid_input : Errc::process_failed,
                who + ": fleet-model " + argv[1] + ": " + e->message);
  }
  if (r.exit_status != 0 || !last) {
    return fail(Errc::process_failed, who + ": fleet-model " + argv[1] + " exited with status " +
                                          std::to_string(r.exit_status) + (r.err.empty() ? "" : ": " + r.err.substr(0, 300)));
  }
  if (const auto* e = std::get_if<T>(&*last)) return *e;
  return fail(Errc::parse, who + ": fleet-model " + argv[1] + " answered with a '" + event::name_of(*last) +
                               "' event, not '" + event::name_of(event::Event{T{}}) + "'");
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

// The board's installed fleet-model (on its PATH: the fleet-model package's /usr/bin/fleet-model),
// if it is this fleetctl's version: the two speak one protocol of JSON lines.
Result<void> check_installed_tool(ssh::Session& s, const std::string& version) {
  const std::string who = "board " + s.endpoint().name;
  auto r = FLEET_TRY(s.run({k_installed_tool, "--version"}, 30s));
  if (r.exit_status != 0) {
    return fail(Errc::not_found,
                who + ": no fleet-model runs there (" + std::string(text::trim(r.err.empty() ? r.out : r.err)).substr(0, 160) +
                    "): install the fleet-model package " + version + ", or give --board-tools DIR to copy one there");
  }
  return with_context(check_tool_version(r.out, version), who);
}

// fleet-model and its libraries on the board, as the tools folder has them for its arch.
Result<void> ensure_tools(ssh::Session& s, const std::filesystem::path& tools) {
  const std::string uname = FLEET_TRY(s.check({"uname", "-m"}, 30s));
  const std::string arch(text::trim(uname));
  if (arch != "aarch64" && arch != "x86_64") {
    return fail(Errc::unsupported, "board " + s.endpoint().name + ": uname -m says '" + arch.substr(0, 40) +
                                       "'; fleet-model is built for aarch64 and x86_64");
  }
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
  if (ec || files.size() < 2) {
    return fail(Errc::not_found, (dir / "lib" / "fleet-model").string() + ": no libtorrent for fleet-model to take to " +
                                     s.endpoint().name + (ec ? " (" + ec.message() + ")" : "") + " (--board-tools)");
  }
  FLEET_TRY(s.check({"mkdir", "-p", k_remote_bin, k_remote_libs}, 30s));
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

Result<void> check_tool_version(std::string_view said, const std::string& version) {
  const std::string_view line = text::trim(said.substr(0, said.find('\n')));
  const std::string want = "fleet-model " + version;
  if (line == want || line.starts_with(want + " ")) return {};
  return fail(Errc::unsupported, "its fleet-model says '" + std::string(line.substr(0, 80)) + "', this fleetctl is " +
                                     version + ": install the fleet-model package " + version +
                                     " there, or give --board-tools DIR");
}

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
  std::error_code fec;
  const auto file_size = std::filesystem::file_size(o.file, fec);
  if (fec) return fail(Errc::not_found, o.file.string() + ": " + fec.message());
  if (file_size == 0) return fail(Errc::invalid_input, o.file.string() + ": an empty file is no model");
  // Every board's addresses, checked before anything is made or sent.
  std::vector<Board> boards(hosts.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    auto& b = boards[i];
    const auto* h = hosts[i];
    b.host = h;
    b.result.board = h->name;
    b.endpoint = ssh::Endpoint{h->name, h->address, h->port, h->user, h->key, o.known_hosts, o.host_keys};
    const std::string where = h->where + ": host " + h->name;
    auto v = h->vars.find("fleet_model_listen");
    b.listen = v != h->vars.end() ? v->second : "0.0.0.0:6881";
    FLEET_TRY(with_context(split_endpoint(b.listen, "fleet_model_listen"), where));
    if (auto a = h->vars.find("fleet_model_address"); a != h->vars.end()) {
      auto [ip, port] = FLEET_TRY(with_context(split_endpoint(a->second, "fleet_model_address (ADDRESS:PORT)"), where));
      if (port == 0) return fail(Errc::invalid_input, where + ": fleet_model_address needs a port, not 0");
      b.dial = with_port(ip, port);
    } else {
      b.address = FLEET_TRY(resolve(h->address, where));
    }
  }
  if (!o.advertise.empty()) FLEET_TRY(split_endpoint(o.advertise + ":1", "--advertise (an IP address)"));
  auto store = FLEET_TRY(store::Store::open(o.state_db));

  PushSummary summary;
  summary.id = "m" + std::to_string(store::now_ms() / 1000) + "-" + FLEET_TRY(tls::random_token()).substr(0, 6);
  summary.name = name;
  out << "model push " << summary.id << ": " << o.file.string() << " to " << hosts.size() << " boards, into " << o.dest
      << "\n" << std::flush;
  summary.sha256 = FLEET_TRY(hash::sha256_file(o.file));
  // Its certificates outlive the push's --timeout: a reconnection late in a long push works.
  auto ca = FLEET_TRY(tls::PushAuthority::create(
      summary.id, static_cast<int>(std::min<long long>(365, o.timeout.count() / 86400 + 2))));
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
  auto me = FLEET_TRY(ca.issue_member("fleetctl"));
  auto seed = FLEET_TRY(Swarm::start({o.listen, o.max_rate, 0, me.cert_pem, me.key_pem}));
  FLEET_TRY(seed->seed(torrent, std::filesystem::absolute(o.file).parent_path()));

  // Set up every board: bounded threads, each board on one of them only.
  for (auto& b : boards) b.remote_dir = o.dest + "/.fleet-models/push/" + summary.id;
  std::atomic<std::size_t> next{0};
  std::mutex out_mu;
  auto setup = [&](Board& b) -> Result<void> {
    b.ssh = FLEET_TRY(ssh::Session::connect(b.endpoint));
    if (o.tools == BoardTools::installed) {
      FLEET_TRY(check_installed_tool(*b.ssh, o.version));
      b.tool = k_installed_tool;
    } else {
      FLEET_TRY(ensure_tools(*b.ssh, o.board_tools));
    }
    const auto seen = FLEET_TRY(one_event<event::Inspect>(*b.ssh,
                                    {b.tool, "inspect", "--dest", o.dest, "--name", name, "--size",
                                     std::to_string(torrent.size), "--sha256", summary.sha256},
                                    "board " + b.result.board));
    if (seen.holds) {
      b.result.outcome = BoardOutcome::held;
      b.result.message = "holds it already";
      move(b.state, Event::concluded);
      return {};
    }
    const std::int64_t free = seen.free_bytes;
    const std::int64_t partial = seen.partial_bytes;
    const std::int64_t needed = std::max<std::int64_t>(0, torrent.size - partial);
    if (free < needed) {
      b.result.outcome = BoardOutcome::no_room;
      b.result.message = o.dest + " has " + human(free) + " free, the file needs " + human(needed) +
                         (partial > 0 ? " more (" + human(partial) + " of it is there from a cut-off push)" : "") +
                         ": nothing sent (" + std::to_string(free) + " bytes free, " + std::to_string(needed) +
                         " needed: three figures can read the same)";
      move(b.state, Event::concluded);
      return {};
    }
    auto id = FLEET_TRY(ca.issue_member(b.result.board));
    // The models folder as any folder (0755: inference services read it); the push's own, private.
    FLEET_TRY(b.ssh->check({"mkdir", "-p", o.dest}, 30s));
    b.controller = o.advertise.empty() ? b.ssh->local_address() : o.advertise;
    if (b.controller.empty()) {
      return fail(Errc::unreachable, "board " + b.result.board + ": cannot tell this machine's address on its SSH connection: give --advertise");
    }
    b.written = true;  // from here on, cleaned up at the end whatever happens
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "push.torrent", torrent.bytes));
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "board.crt", id.cert_pem));
    FLEET_TRY(write_private(*b.ssh, b.remote_dir, "board.key", id.key_pem));
    move(b.state, Event::set_up);
    return {};
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < std::max(1, o.forks); ++w) {
    workers.emplace_back([&] {
      for (std::size_t i; (i = next++) < boards.size();) {
        auto& b = boards[i];
        if (auto r = setup(b); !r) {
          if (b.state == State::setup) move(b.state, Event::concluded);
          b.result.outcome = r.error().code == Errc::unreachable ? BoardOutcome::unreachable : BoardOutcome::failed;
          b.result.message = r.error().message;
        }
        if (b.state == State::finished && !b.written) b.ssh.reset();  // nothing more to do there
        std::lock_guard lock(out_mu);
        if (b.state == State::finished) out << "  " << b.result.board << ": " << outcome_name(b.result.outcome) << ": " << b.result.message << "\n" << std::flush;
      }
    });
  }
  // The seed's session turns while boards are set up. Its error is kept until the workers
  // are joined: returning with them running would end the process.
  std::optional<Error> seed_error;
  while (next < boards.size() && !seed_error) {
    if (auto p = seed->poll(100ms); !p) seed_error = p.error();
  }
  for (auto& t : workers) t.join();
  auto remember = [&](const Board& b, const std::string& path) {
    if (auto put = store->put_model({b.result.board, path, name, summary.sha256, torrent.size, summary.id, store::now_ms()});
        !put) {
      std::lock_guard lock(out_mu);
      out << "  " << b.result.board << ": warning: not recorded for `model list`: " << put.error().message << "\n";
    }
  };
  for (auto& b : boards) {
    if (b.result.outcome == BoardOutcome::held) remember(b, o.dest + "/" + name);
  }

  // Start every waiting board's fetch; the ones that listen are announced to the rest.
  const auto transfer_start = Clock::now();
  const int fetching = static_cast<int>(std::count_if(boards.begin(), boards.end(), [](const Board& b) { return b.state == State::waiting; }));
  int stripe = 0;
  for (auto& b : boards) {
    if (b.state != State::waiting) continue;
    if (seed_error) {
      move(b.state, Event::failed);
      b.result.outcome = BoardOutcome::failed;
      b.result.message = "not started: the controller's seed failed: " + seed_error->message;
      continue;
    }
    const std::string peers = with_port(b.controller, seed->port());
    std::vector<std::string> argv{b.tool, "fetch", "--torrent", b.remote_dir + "/push.torrent", "--cert",
                                  b.remote_dir + "/board.crt", "--key", b.remote_dir + "/board.key", "--dest", o.dest,
                                  "--sha256", summary.sha256, "--listen", b.listen, "--peer", peers,
                                  "--max-rate", std::to_string(o.board_max_rate)};
    if (!o.direct) {
      argv.push_back("--stripe");
      argv.push_back(std::to_string(stripe++) + "/" + std::to_string(fetching));
    }
    auto s = b.ssh->start(argv);
    if (!s) {
      move(b.state, Event::failed);
      b.result.outcome = BoardOutcome::failed;
      b.result.message = s.error().message;
      continue;
    }
    b.stream = std::move(*s);
    move(b.state, Event::started);
    b.started = Clock::now();
  }

  auto finish = [&](Board& b, BoardOutcome outcome, const std::string& message) {
    move(b.state, Event::failed);
    b.result.outcome = outcome;
    b.result.message = message;
    b.down_rate = 0;
    // Its verdict is made; if the channel is gone already there is nobody left to tell.
    if (b.stream) (void)b.stream->close_stdin();
    std::lock_guard lock(out_mu);
    out << (o.live ? "\r\033[K" : "") << "  " << b.result.board << ": " << outcome_name(outcome) << ": " << message << "\n"
        << std::flush;
  };
  auto last_print = Clock::now() - 10s;
  const auto deadline = transfer_start + o.timeout;
  std::int64_t last_done = -1;
  auto last_gain = Clock::now();
  for (;;) {
    if (!seed_error) {
      if (auto p = seed->poll(50ms); !p) seed_error = p.error();
    }
    if (seed_error) {
      for (auto& b : boards) {
        if (b.state == State::fetching) finish(b, BoardOutcome::failed, "the controller's seed failed: " + seed_error->message);
      }
    }
    int running = 0;
    for (auto& b : boards) {
      if (b.state != State::fetching && b.state != State::complete) continue;
      auto status = b.stream->pump(0ms, [&](std::string_view line) {
        auto e = event::parse_line(line, "fetch");
        if (!e) {
          // fleet-model of this version prints nothing else on stdout: a line that is no event,
          // or an event with a wrong field, means the board cannot be followed. It fails with
          // the line's fault (and stops, its stdin closed); a complete board only stops serving.
          if (b.state == State::fetching) finish(b, BoardOutcome::failed, e.error().message);
          return;
        }
        if (const auto* l = std::get_if<event::Listening>(&*e); l && !b.listening) {
          b.listening = true;
          if (o.direct) return;  // nobody is told of it: every piece comes from the controller
          if (b.host->vars.find("fleet_model_address") == b.host->vars.end()) b.dial = with_port(b.address, l->port);
          // Every fetch started above: each board that listens is told to all the others.
          for (auto& other : boards) {
            if (&other == &b || !other.stream || other.state == State::finished) continue;
            if (auto told = other.stream->write("peer " + b.dial + "\n"); !told) {
              if (other.state == State::fetching) finish(other, BoardOutcome::unreachable, told.error().message);
              else move(other.state, Event::stopped);  // complete: it only stops serving
            }
          }
        } else if (const auto* pr = std::get_if<event::Progress>(&*e)) {
          b.done = pr->done;
          b.down_rate = pr->down_rate;
        } else if (const auto* c = std::get_if<event::Complete>(&*e); c && b.state == State::fetching) {
          move(b.state, Event::completed);
          b.done = torrent.size;
          b.down_rate = 0;
          b.result.seconds = std::chrono::duration<double>(Clock::now() - b.started).count();
          b.result.outcome = BoardOutcome::complete;
          b.result.fetched = c->downloaded;
          remember(b, o.dest + "/" + name);
        } else if (const auto* f = std::get_if<event::Failure>(&*e)) {
          b.result.message = f->message;  // the exit status that follows fails the board with it
        } else if (const auto* s = std::get_if<event::Stopped>(&*e)) {
          b.result.message = s->message;
        }
      });
      if (!status) {
        if (b.state == State::complete) {
          move(b.state, Event::stopped);  // its file is in place; it only stopped serving early
          continue;
        }
        finish(b, BoardOutcome::unreachable, status.error().message);
        continue;
      }
      if (*status) {
        if (b.state == State::complete) {
          move(b.state, Event::stopped);  // stopped serving, as asked
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
      if (!b.stream || (b.state == State::finished && b.result.outcome != BoardOutcome::complete)) continue;
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
    // Nothing moved for ten minutes: the boards cannot reach the controller or each other.
    if (fp.done != last_done) {
      last_done = fp.done;
      last_gain = Clock::now();
    } else if (Clock::now() - last_gain > 10min) {
      for (auto& b : boards) {
        if (b.state == State::fetching) {
          finish(b, BoardOutcome::failed, "no piece came in 10 minutes: does the board reach " + b.controller + ":" +
                                              std::to_string(seed->port()) + " (--advertise) and the other boards?");
        }
      }
      break;
    }
    if (Clock::now() > deadline) {
      for (auto& b : boards) {
        if (b.state == State::fetching) finish(b, BoardOutcome::failed, "not complete within --timeout; its verified pieces stay for the next push");
      }
      break;
    }
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - transfer_start).count();
  if (auto p = seed->poll(0ms)) summary.controller_sent = p->uploaded;
  if (seed_error) out << "model push: the controller's seed failed: " << seed_error->message << "\n";
  // Every board stops serving; each must exit (bounded), then its push files go.
  for (auto& b : boards) {
    // A channel that cannot take EOF is gone: the pump below sees it and stops waiting.
    if (b.stream) (void)b.stream->close_stdin();
  }
  const auto stop_by = Clock::now() + 30s;
  for (auto& b : boards) {
    while (b.stream && b.state == State::complete && Clock::now() < stop_by) {
      auto status = b.stream->pump(100ms, {});
      if (!status || *status) move(b.state, Event::stopped);
    }
    b.stream.reset();
    if (b.written && b.ssh) {
      // The board's key goes with the push.
      if (auto rm = b.ssh->run({"rm", "-rf", b.remote_dir}, 30s); !rm || rm->exit_status != 0) {
        out << "  " << b.result.board << ": warning: could not remove " << b.remote_dir << " (its key for this push)\n";
      }
    }
    b.ssh.reset();
  }
  if (o.live) out << "\n";
  for (auto& b : boards) summary.boards.push_back(b.result);
  (void)started;
  return summary;
}

}  // namespace fleet::model
