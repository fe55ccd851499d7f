// bench/rollout_sim: the rollout engine over simulated boards on a simulated clock.
//
// Prints, per case (N boards, --serial 1,100%, forks F), the rollout's wall time in simulated
// seconds under fleetctl's slot model (slots for SSH work only, pre-staging) and under the
// forks-held model (Ansible's: a board holds its fork from connect to verdict), and the ratio
// new/held. Then, at the largest N, the controller's peak RSS and the SQLite time per board
// (real: the state database is a SQLite file in a temporary folder, written as a rollout
// writes it).
//
//   rollout_sim [--boards 32,256,10000] [--forks 5,50] [--steps FILE]
//
// The step times come from the virtual rack (bench/board_boot.sh prints them from a real
// rollout's state database); --steps FILE replaces them, one "name seconds" per line.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "controller/rollout/engine.hpp"

using namespace fleet;
using namespace fleet::rollout;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

namespace {

// Seconds each part of an update takes on a virtual board (QEMU TCG, this machine), and what
// one poll costs (an SSH connection and a command). Replaced by --steps.
std::map<std::string, double> g_steps = {
    {"connect", 0.3},      // SSH handshake and key exchange
    {"inspect", 0.4},      // uname, boot_id, sha256sum of the agent, fleet-agent status
    {"push_bundle", 2.5},  // upload of the bundle tar, sha256 on the board, unpack
    {"push_agent", 1.0},   // the agent (when it differs) and its setup
    {"install", 2.0},      // fleet-agent install: the slot on the FAT boot partition
    {"reboot", 0.3},       // boot_id, fleet-agent tryboot
    {"down", 9.5},         // from the reboot command to sshd answering again
    {"verify", 6.0},       // boot-check: the contract and the throughput probe, then commit
    {"poll", 0.3},         // one look at a rebooting board (boot_id or fleet-agent status)
};

ms step_ms(const char* name) { return ms(static_cast<long>(g_steps.at(name) * 1000)); }

struct SimBoard {
  int boot = 1;
  std::uint64_t seq = 1;
  Executor::Clock::time_point up_at{}, verdict_at{};
  bool updating = false, committed = false;
};

class Io : public BoardIO {
 public:
  Io(SimBoard& b, SimExecutor& e) : b_(b), e_(e) {}
  Result<void> connect() override { return cost("connect"); }
  Result<Inspection> inspect() override {
    FLEET_TRY(cost("inspect"));
    return Inspection{"6.12.49-old", "boot-" + std::to_string(b_.boot), "6.12.49-old", b_.seq, false};
  }
  Result<void> push_agent(const std::string&) override { return cost("push_agent"); }
  Result<void> push_bundle() override { return cost("push_bundle"); }
  Result<void> install(const std::string&) override { return cost("install"); }
  Result<void> tryboot() override {
    FLEET_TRY(cost("reboot"));
    ++b_.boot;
    b_.updating = true;
    b_.up_at = e_.now() + step_ms("reboot") + step_ms("down");
    b_.verdict_at = b_.up_at + step_ms("verify");
    return {};
  }
  Result<void> rollback() override { return fail(Errc::unsupported, "not simulated"); }
  Result<std::string> boot_id() override {
    FLEET_TRY(cost("poll"));
    if (b_.updating && e_.now() < b_.up_at) return fail(Errc::unreachable, "rebooting");
    return "boot-" + std::to_string(b_.boot);
  }
  Result<AgentView> agent_view() override {
    FLEET_TRY(cost("poll"));
    if (b_.updating && e_.now() < b_.up_at) return fail(Errc::unreachable, "rebooting");
    if (b_.updating && e_.now() >= b_.verdict_at) {
      b_.updating = false;
      b_.committed = true;
      ++b_.seq;
    }
    if (b_.updating) return AgentView{AgentState::busy, AgentPhase::none, "", "6.12.49-old", b_.seq};
    return AgentView{AgentState::idle, b_.committed ? AgentPhase::committed : AgentPhase::none, "",
                     b_.committed ? "6.12.49-new" : "6.12.49-old", b_.seq};
  }

 private:
  Result<void> cost(const char* name) {
    e_.charge(step_ms(name));
    return {};
  }
  SimBoard& b_;
  SimExecutor& e_;
};

struct Case {
  double seconds = 0;
  RunnerResult result;
};

Case run_case(int n, int forks, SlotPolicy policy, const std::filesystem::path& db) {
  std::filesystem::remove(db);
  std::filesystem::remove(db.string() + "-wal");
  std::filesystem::remove(db.string() + "-shm");
  auto store = store::Store::open(db);
  if (!store) {
    std::fprintf(stderr, "rollout_sim: %s\n", store.error().message.c_str());
    std::exit(1);
  }
  auto serial = parse_serial("1,100%");
  auto waves = plan_waves(static_cast<std::size_t>(n), *serial);
  std::vector<RunnerBoard> boards;
  std::vector<SimBoard> sims(static_cast<std::size_t>(n));
  std::unordered_map<std::string, std::size_t> index;
  int i = 0;
  for (std::size_t w = 0; w < waves.size(); ++w) {
    for (std::size_t k = 0; k < waves[w]; ++k, ++i) {
      store::BoardRow r;
      r.rollout_id = "r-sim";
      r.board = "pi-" + std::to_string(i + 1);
      r.wave = static_cast<int>(w);
      r.token = std::string(64, 'a');
      index[r.board] = static_cast<std::size_t>(i);
      boards.push_back({std::move(r), "", 1});
    }
  }
  SimExecutor exec;
  BoardFactory factory = [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
    return std::unique_ptr<BoardIO>(std::make_unique<Io>(sims[index.at(r.board)], exec));
  };
  RolloutRunner runner(**store, factory, exec, [](const store::BoardRow&) {});
  RunnerOptions o;
  o.kernel_release = "6.12.49-new";
  o.forks = forks;
  o.slots = policy;
  o.timeouts.poll = 2000ms;
  Case c;
  c.result = runner.run(boards, o);
  c.seconds = std::chrono::duration<double>(exec.now() - Executor::Clock::time_point{}).count();
  if (c.result.committed != n) {
    std::fprintf(stderr, "rollout_sim: %d of %d boards committed (%s)\n", c.result.committed, n, c.result.message.c_str());
    std::exit(1);
  }
  return c;
}

std::vector<int> int_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {32, 256, 10000}, forks = {5, 50};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--boards") sizes = int_list(v);
    else if (a == "--forks") forks = int_list(v);
    else if (a == "--steps") {
      std::ifstream in(v);
      std::string name;
      double seconds;
      while (in >> name >> seconds) {
        if (!g_steps.count(name)) {
          std::fprintf(stderr, "rollout_sim: %s: unknown step '%s'\n", v.c_str(), name.c_str());
          return 2;
        }
        g_steps[name] = seconds;
      }
    } else {
      std::fprintf(stderr, "usage: rollout_sim [--boards 32,256,10000] [--forks 5,50] [--steps FILE]\n");
      return 2;
    }
  }
  std::printf("step times (s):");
  for (const auto& [k, v] : g_steps) std::printf(" %s %.1f", k.c_str(), v);
  std::printf("\nserial 1,100%%, simulated seconds from start to the last verdict\n");
  const auto dir = std::filesystem::temp_directory_path() / ("rollout-sim-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Case last;
  int last_n = 0;
  for (int n : sizes) {
    for (int f : forks) {
      auto t0 = std::chrono::steady_clock::now();
      Case held = run_case(n, f, SlotPolicy::held, dir / "held.db");
      Case work = run_case(n, f, SlotPolicy::work, dir / "work.db");
      double real = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("N=%-6d forks=%-3d held %9.0f s   slots-for-work %8.0f s (in work at most %d, watched at most %d)"
                  "   [%.1f s real]   new/held %.2f\n",
                  n, f, held.seconds, work.seconds, work.result.max_in_work, work.result.max_watching, real,
                  work.seconds / held.seconds);
      std::fflush(stdout);
      last = work;
      last_n = n;
    }
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS of this process (controller loop, %d boards, SQLite): %.1f MiB\n", last_n, ru.ru_maxrss / 1024.0);
  std::printf("SQLite at N=%d: %lld rows saved, %.3f ms per board (%.2f s in all, synchronous=FULL, WAL)\n", last_n,
              static_cast<long long>(last.result.saves),
              std::chrono::duration<double, std::milli>(last.result.save_time).count() / last_n,
              std::chrono::duration<double>(last.result.save_time).count());
  std::filesystem::remove_all(dir);
  return 0;
}
