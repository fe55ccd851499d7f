// Peak memory of fleet-agent doing its everyday work on a board, measured with wait4(2):
//   verify        read /proc and /sys, check a contract
//   send-reports  deliver an outbox report over gRPC with TLS to a real ReportService (in this
//                 process, with a certificate from a CA made for the run)
//   bench         the throughput probe, whose weight buffers are reported apart
// Usage: agent_rss AGENT   (prints a table; exit 1 if a step fails)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "controller/reports/report_server.hpp"
#include "controller/tls/authority.hpp"

namespace {

struct Run {
  int status = -1;
  long max_rss_kb = 0;
  std::string out;
};

Run run(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  close(fds[1]);
  Run r;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, std::size_t(n));
  close(fds[0]);
  struct rusage ru {};
  wait4(pid, &r.status, 0, &ru);
  r.max_rss_kb = ru.ru_maxrss;
  return r;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  if (!fleet::fs::write_file_atomic(p, text)) std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: agent_rss AGENT\n";
    return 2;
  }
  const std::string agent = argv[1];
  auto dir = fleet::fs::make_temp_dir("fleet-rss");
  if (!dir) return 1;
  const auto root = *dir;
  // A board's /proc and /sys as the tests shape them.
  write(root / "proc/self/smaps", "KernelPageSize:       16 kB\n");
  write(root / "proc/sys/kernel/osrelease", "6.1.192-fleet-qemu\n");
  write(root / "proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\n");
  write(root / "sys/devices/system/node/online", "0-7\n");
  write(root / "sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n");
  {
    gzFile gz = gzopen((root / "proc/config.gz").c_str(), "wb");
    const std::string cfg = "CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\n";
    gzwrite(gz, cfg.data(), unsigned(cfg.size()));
    gzclose(gz);
  }
  write(root / "contract.json",
        R"({"kernel_release":"6.1.192-fleet-qemu","page_size":16384,"thp":"madvise","numa_nodes":8,"hz":100,"tick":"NO_HZ_IDLE","headless":true})");

  int received = 0;
  auto ca = fleet::tls::Authority::open_or_create(root / "controller/tls");
  auto identity = ca ? ca->issue_server() : fleet::Result<fleet::tls::ServerIdentity>(std::unexpected(ca.error()));
  auto store = fleet::store::Store::open(root / "controller/fleet.db");
  if (!identity || !store) {
    std::cerr << (identity ? store.error().message : identity.error().message) << "\n";
    return 1;
  }
  fleet::controller::TokenBook tokens;
  tokens.add("pi-1", "r1", "tok");
  auto server = fleet::controller::ReportServer::start({"127.0.0.1:0", *identity}, tokens, **store,
                                                       [&](const fleet::v1::PhaseReport&) { ++received; });
  if (!server) {
    std::cerr << server.error().message << "\n";
    return 1;
  }
  write(root / "etc/fleet-agent/ca.pem", ca->certificate().pem);
  write(root / "etc/fleet-agent/agent.json",
        nlohmann::json{{"board_id", "pi-1"}, {"controller", "127.0.0.1:" + std::to_string((*server)->port())}, {"token", "tok"}}
            .dump());
  nlohmann::json report = {{"board_id", "pi-1"}, {"rollout_id", "r1"}, {"phase", "COMMITTED"}, {"sequence", 1},
                           {"running_release", "6.1.192-fleet-qemu"}, {"checks", nlohmann::json::array()},
                           {"throughput", {{"shape", "1b"}, {"tokens_per_s", 9.0}}}};
  for (int i = 0; i < 7; ++i) {
    report["checks"].push_back({{"property", "p" + std::to_string(i)}, {"expected", "x"}, {"actual", "x"}, {"pass", true}});
  }
  write(root / "var/lib/fleet-agent/outbox/000000000001.json", report.dump());

  auto verify = run({agent, "verify", "--root", root.string(), "--contract", (root / "contract.json").string()});
  auto send = run({agent, "send-reports", "--root", root.string(), "--give-up-after", "20"});
  auto bench = run({agent, "bench", "--model-shape", "15m", "--no-bandwidth", "--tokens", "3", "--json"});
  std::filesystem::remove_all(root);
  long probe_kb = 0;
  if (auto j = nlohmann::json::parse(bench.out, nullptr, false); j.is_object() && j.contains("probe")) {
    probe_kb = long(j["probe"]["resident_bytes"].get<std::uint64_t>() / 1024);
  }
  const bool ok = WIFEXITED(verify.status) && WEXITSTATUS(verify.status) == 0 && WIFEXITED(send.status) &&
                  WEXITSTATUS(send.status) == 0 && received == 1 && WIFEXITED(bench.status) &&
                  WEXITSTATUS(bench.status) == 0;
  std::printf("fleet-agent peak RSS (%s)\n", agent.c_str());
  std::printf("  verify                 %6.1f MB\n", double(verify.max_rss_kb) / 1024);
  std::printf("  send-reports (gRPC+TLS)%6.1f MB   report delivered: %s\n", double(send.max_rss_kb) / 1024,
              received == 1 ? "yes" : "NO");
  std::printf("  bench 15m probe        %6.1f MB   of which weight buffers %.1f MB -> %.1f MB beside them\n",
              double(bench.max_rss_kb) / 1024, double(probe_kb) / 1024, double(bench.max_rss_kb - probe_kb) / 1024);
  std::printf("  goal: verify and report under 10 MB: %s\n",
              std::max(verify.max_rss_kb, send.max_rss_kb) < 10 * 1024 ? "met" : "NOT met");
  return ok ? 0 : 1;
}
