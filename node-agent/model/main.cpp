// fleet-model: a board's side of `fleetctl model push` (see swarm.hpp and holdings.hpp).
// fleetctl runs it over SSH. Every command prints JSON on stdout, one object per line;
// errors also go to stderr in words, and the exit status says how it ended:
//   0 done, 1 the transfer or the disk failed, 2 bad usage, 3 stopped (stdin closed) before
//   the file was complete: its verified pieces stay for the next push.
#include <poll.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/build_info.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "node-agent/model/events.hpp"
#include "node-agent/model/holdings.hpp"
#include "node-agent/model/swarm.hpp"

using namespace fleet;
using namespace fleet::model;

namespace {

const char* const k_synopsis =
    "fleet-model inspect --dest DIR --name NAME --size BYTES --sha256 HEX\n"
    "       fleet-model list --dest DIR\n"
    "       fleet-model fetch --torrent FILE --cert FILE --key FILE --dest DIR --sha256 HEX\n"
    "                         [--listen ADDR:PORT] [--peer ADDR:PORT,...] [--max-rate BYTES] [--stripe I/N]\n"
    "       fleet-model seed --torrent FILE --cert FILE --key FILE --dir DIR [--listen ADDR:PORT]\n"
    "                        [--peer ADDR:PORT,...] [--max-rate BYTES]\n"
    "       fleet-model --version";

const char* const k_about =
    "A board's side of `fleetctl model push`, which runs it over SSH; it prints JSON, one\n"
    "object per line.\n\n"
    "  inspect  whether DIR holds the model already, the free bytes there, and the bytes a\n"
    "           cut-off transfer of it left (a resumed one needs no room for those again)\n"
    "  list     the models DIR holds, with their size, sha256 and when they came\n"
    "  fetch    joins the push's swarm (a TLS torrent: its certificate and key come from the\n"
    "           push's CA), serves the pieces it has to the others, and when every piece is\n"
    "           verified: checks the whole file's sha256, fsyncs it and renames it into DIR.\n"
    "           It goes on serving until stdin closes; a line `peer ADDR:PORT` on stdin adds\n"
    "           a peer to dial. Progress every second.\n"
    "  seed     serves a file it holds (DIR/NAME), unchecked, until stdin closes\n\n"
    "Exit status: 0 done, 1 failed, 2 bad usage, 3 stopped before the file was complete\n"
    "(its verified pieces are kept for the next push).";

std::vector<args::Option> options() {
  return {
      {"dest", args::Takes::value, "DIR", "the models folder"},
      {"dir", args::Takes::value, "DIR", "seed: the folder holding the file"},
      {"name", args::Takes::value, "NAME", "inspect: the model's file name"},
      {"size", args::Takes::value, "BYTES", "inspect: its size"},
      {"sha256", args::Takes::value, "HEX", "its sha256"},
      {"torrent", args::Takes::value, "FILE", "the push's .torrent"},
      {"cert", args::Takes::value, "FILE", "this board's certificate from the push's CA"},
      {"key", args::Takes::value, "FILE", "its key"},
      {"listen", args::Takes::value, "ADDR:PORT", "where to take peers' connections (TLS); default 0.0.0.0:6881"},
      {"peer", args::Takes::value, "ADDR:PORT", "peers to dial, comma-separated"},
      {"max-rate", args::Takes::value, "BYTES", "upload and download limit, bytes/s each (0: none)"},
      {"stripe", args::Takes::value, "I/N", "fetch: pieces I, I+N, I+2N, ... first (this board's share of the controller's upload)"},
      {"help", args::Takes::nothing, "", "this text"},
  };
}

void say(const event::Event& e) { std::cout << event::to_line(e) << "\n" << std::flush; }

int failed(const std::string& command, const Error& e, int code = 1) {
  say(event::Failure{e.message});
  std::cerr << "fleet-model " << command << ": " << e.message << "\n";
  return code;
}

Result<std::string> need(const args::Parsed& a, const std::string& name) {
  auto v = a.value(name);
  if (!v || v->empty()) return fail(Errc::invalid_input, "--" + name + " is required");
  return *v;
}

Result<std::int64_t> bytes_value(const args::Parsed& a, const std::string& name, std::int64_t dflt) {
  auto v = a.value(name);
  if (!v) return dflt;
  std::size_t used = 0;
  long long n = -1;
  try {
    n = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || n < 0) return fail(Errc::invalid_input, "--" + name + " must be a whole number of bytes, got '" + *v + "'");
  return static_cast<std::int64_t>(n);
}

std::vector<std::string> peers_of(const std::string& joined) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= joined.size()) {
    auto comma = joined.find(',', at);
    auto part = joined.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// stdin: `peer ADDR:PORT` lines, then EOF (the controller is done, or gone).
struct Control {
  std::string buffer;
  bool closed = false;
  std::vector<std::string> take_peers() {
    std::vector<std::string> peers;
    for (;;) {
      struct pollfd p {0, POLLIN, 0};
      if (closed || ::poll(&p, 1, 0) <= 0) break;
      std::array<char, 4096> chunk{};
      const ssize_t n = ::read(0, chunk.data(), chunk.size());
      if (n <= 0) {
        closed = true;
        break;
      }
      buffer.append(chunk.data(), static_cast<std::size_t>(n));
    }
    std::size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.rfind("peer ", 0) == 0) peers.push_back(line.substr(5));
    }
    return peers;
  }
};

event::Progress progress_event(const Progress& p) {
  event::Progress e{p.done, p.total, p.down_rate, p.up_rate, p.uploaded, p.downloaded, p.hash_failures, p.banned, {}};
  for (const auto& v : p.peers) e.peers.push_back({v.endpoint, v.progress});
  return e;
}

struct Common {
  Torrent torrent;
  SwarmOptions swarm;
  std::vector<std::string> peers;
};

Result<Common> common_of(const args::Parsed& a) {
  Common c;
  const auto torrent_file = FLEET_TRY(need(a, "torrent"));
  const auto torrent_bytes = FLEET_TRY(fs::read_file(torrent_file));
  c.torrent = FLEET_TRY(read_torrent(torrent_bytes, torrent_file));
  const auto cert_file = FLEET_TRY(need(a, "cert"));
  const auto key_file = FLEET_TRY(need(a, "key"));
  c.swarm.cert_pem = FLEET_TRY(fs::read_file(cert_file));
  c.swarm.key_pem = FLEET_TRY(fs::read_file(key_file));
  c.swarm.listen = a.value("listen").value_or("0.0.0.0:6881");
  const auto rate = FLEET_TRY(bytes_value(a, "max-rate", 0));
  c.swarm.upload_limit = c.swarm.download_limit = rate;
  if (auto p = a.value("peer")) c.peers = peers_of(*p);
  return c;
}

// Serves and takes pieces until `step` says stop, or stdin closes; then 0 if `finished()`,
// else 3 (stopped before the file was in place).
Result<int> run_swarm(Swarm& s, Control& control, const std::function<Result<bool>(const Progress&)>& step,
                      const std::function<bool()>& finished) {
  auto next_report = std::chrono::steady_clock::now();
  for (;;) {
    for (const auto& peer : control.take_peers()) {
      // A bad line from the controller costs that peer, not the transfer.
      if (auto ok = s.connect({peer}); !ok) say(event::Warning{ok.error().message});
    }
    auto p = FLEET_TRY(s.poll(std::chrono::milliseconds(200)));
    if (FLEET_TRY(step(p))) return 0;
    if (std::chrono::steady_clock::now() >= next_report) {
      say(progress_event(p));
      next_report = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    if (control.closed) return finished() ? 0 : 3;
  }
}

int inspect(const args::Parsed& a) {
  auto r = [&]() -> Result<event::Inspect> {
    const std::filesystem::path dest = FLEET_TRY(need(a, "dest"));
    const auto name = FLEET_TRY(need(a, "name"));
    FLEET_TRY(check_name(name, "--name"));
    const auto sha = FLEET_TRY(need(a, "sha256"));
    FLEET_TRY(check_sha256(sha, "--sha256"));
    const auto size = FLEET_TRY(bytes_value(a, "size", -1));
    if (size < 0) return fail(Errc::invalid_input, "--size is required");
    const bool held = FLEET_TRY(holds(dest, name, size, sha));
    return event::Inspect{held, FLEET_TRY(free_bytes(dest)), partial_bytes(dest, sha, name)};
  }();
  if (!r) return failed("inspect", r.error(), r.error().code == Errc::invalid_input ? 2 : 1);
  say(*r);
  return 0;
}

int list_models(const args::Parsed& a) {
  auto r = [&]() -> Result<event::List> {
    const std::filesystem::path dest = FLEET_TRY(need(a, "dest"));
    return event::List{FLEET_TRY(list(dest))};
  }();
  if (!r) return failed("list", r.error(), r.error().code == Errc::invalid_input ? 2 : 1);
  say(*r);
  return 0;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fetch(const args::Parsed& a) {
  Control control;
  auto r = [&]() -> Result<int> {
    auto c = FLEET_TRY(common_of(a));
    const std::filesystem::path dest = FLEET_TRY(need(a, "dest"));
    const auto sha = FLEET_TRY(need(a, "sha256"));
    FLEET_TRY(check_sha256(sha, "--sha256"));
    FLEET_TRY(check_name(c.torrent.name, "the torrent's name"));
    std::pair<int, int> stripe{0, 1};
    if (auto v = a.value("stripe")) {
      const auto slash = v->find('/');
      try {
        std::size_t u1 = 0, u2 = 0;
        stripe = {std::stoi(v->substr(0, slash), &u1), std::stoi(v->substr(slash + 1), &u2)};
        if (slash == std::string::npos || u1 != slash || u2 != v->size() - slash - 1 || stripe.second < 1 ||
            stripe.first < 0 || stripe.first >= stripe.second) {
          throw std::invalid_argument("");
        }
      } catch (const std::exception&) {
        return fail(Errc::invalid_input, "--stripe must be I/N, whole numbers with 0 <= I < N, got '" + *v + "'");
      }
    }
    const auto partial = partial_dir(dest, sha);
    std::error_code ec;
    std::filesystem::create_directories(partial, ec);
    if (ec) return fail(Errc::io, partial.string() + ": " + ec.message());
    auto swarm = FLEET_TRY(Swarm::start(c.swarm));
    FLEET_TRY(swarm->fetch(c.torrent, partial, stripe));
    FLEET_TRY(swarm->connect(c.peers));
    say(event::Listening{swarm->port(), c.torrent.name, c.torrent.size});
    // fetching -> flushing (every piece written) -> moving (renamed into DIR) -> serving.
    enum class Phase { fetching, flushing, moving, serving } phase = Phase::fetching;
    return run_swarm(*swarm, control, [&](const Progress& p) -> Result<bool> {
      if (phase == Phase::fetching && p.complete) {
        swarm->flush();
        phase = Phase::flushing;
      } else if (phase == Phase::flushing && p.flushed) {
        // Every piece passed its SHA-256; the whole file must be the one asked for too.
        const auto file = partial / c.torrent.name;
        const auto got = FLEET_TRY(hash::sha256_file(file));
        if (got != sha) {
          return fail(Errc::mismatch, file.string() + ": sha256 " + got + ", not " + sha +
                                          " (the torrent and --sha256 disagree)");
        }
        FLEET_TRY(fs::fsync_renamed(file));  // fsyncs the file's data before it gets its name
        FLEET_TRY(swarm->move_to(dest));
        phase = Phase::moving;
      } else if (phase == Phase::moving && p.moved) {
        FLEET_TRY(fs::fsync_dir(dest));
        FLEET_TRY(record(dest, Held{c.torrent.name, c.torrent.size, sha, now_ms()}));
        std::error_code rm;
        std::filesystem::remove_all(partial, rm);
        say(event::Complete{c.torrent.name, sha, (dest / c.torrent.name).string(), p.hash_failures, p.banned,
                            p.downloaded});
        phase = Phase::serving;
      }
      return false;
    }, [&] { return phase == Phase::serving; });
  }();
  if (!r) return failed("fetch", r.error(), r.error().code == Errc::invalid_input ? 2 : 1);
  if (*r == 3) say(event::Stopped{"stdin closed before the file was complete; its verified pieces are kept"});
  return *r;
}

int seed(const args::Parsed& a) {
  Control control;
  auto r = [&]() -> Result<int> {
    auto c = FLEET_TRY(common_of(a));
    const std::filesystem::path dir = FLEET_TRY(need(a, "dir"));
    auto swarm = FLEET_TRY(Swarm::start(c.swarm));
    FLEET_TRY(swarm->seed(c.torrent, dir));
    FLEET_TRY(swarm->connect(c.peers));
    say(event::Listening{swarm->port(), c.torrent.name, c.torrent.size});
    return run_swarm(*swarm, control, [](const Progress&) -> Result<bool> { return false; }, [] { return true; });
  }();
  if (!r) return failed("seed", r.error(), r.error().code == Errc::invalid_input ? 2 : 1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> argv_s(argv + 1, argv + argc);
    if (argv_s.empty() || argv_s[0] == "--help" || argv_s[0] == "-h") {
      (argv_s.empty() ? std::cerr : std::cout) << "usage: " << k_synopsis << "\n\n" << k_about << "\n";
      return argv_s.empty() ? 2 : 0;
    }
    if (argv_s[0] == "--version" || argv_s[0] == "version") {
      // fleetctl model push --board-tools installed reads this: the same version, or refused.
      std::cout << "fleet-model " << FLEET_VERSION << " (commit " << build::k_git_commit << ")\n";
      return 0;
    }
    const std::string command = argv_s[0];
    std::vector<std::string> rest(argv_s.begin() + 1, argv_s.end());
    const auto opts = options();
    int code = 0;
    auto a = args::parse_command(rest, opts, args::Usage{"fleet-model " + command, k_synopsis, k_about}, std::cout,
                                 std::cerr, code);
    if (!a) return code;
    if (command == "inspect") return inspect(*a);
    if (command == "list") return list_models(*a);
    if (command == "fetch") return fetch(*a);
    if (command == "seed") return seed(*a);
    std::cerr << "fleet-model: unknown command '" << command << "'\nusage: " << k_synopsis << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fleet-model: internal error: " << e.what() << "\n";
    return 70;
  }
}
