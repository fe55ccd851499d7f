#include "node-agent/lifecycle/system.hpp"

#include <linux/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "common/fs.hpp"
#include "common/light_board.hpp"
#include "common/process.hpp"
#include "node-agent/bench/bench.hpp"
#include "node-agent/lifecycle/wire.hpp"

namespace fleet::agent {

RealSystem::RealSystem(std::filesystem::path root) : root_(std::move(root)) {
  std::error_code ec;
  light_ = std::filesystem::exists(root_ / light::k_marker, ec);
}

std::string RealSystem::running_release() {
  auto r = fs::read_file(root_ / "proc/sys/kernel/osrelease").value_or("");
  while (!r.empty() && (r.back() == '\n' || r.back() == ' ')) r.pop_back();
  return r;
}

Report RealSystem::verify(const Contract& contract) {
  // A light board's page size is its kernel's (proc/self/smaps as fleet-sim wrote it), not
  // that of the machine it runs on.
  return evaluate(contract, observe(root_, root_ == "/" && !light_ ? Source::live : Source::folder));
}

Result<std::optional<bootloader::Info>> RealSystem::bootloader() { return read_bootloader(root_); }

namespace {

bench::BenchOptions bench_options(const std::filesystem::path& root, const BenchSpec& spec) {
  bench::BenchOptions o;
  o.threads = spec.threads;
  if (!spec.model.empty()) {
    o.model = root / std::filesystem::path(spec.model).relative_path();
  } else {
    o.shape = spec.shape;
  }
  // At boot: one bandwidth figure (read, all threads, huge pages), the probe, llama-bench.
  o.bw.kernels = {bench::Kernel::read};
  o.bw.huge = {bench::Huge::on};
  o.bw.repetitions = 3;
  o.bw.floor_bytes = 64u << 20;  // still 32x a Pi 5's L3; keeps the boot short
  o.bw.thread_counts = {spec.threads > 0 ? spec.threads : 0};
  if (spec.max_seconds > 0) {
    o.probe_options.max_time = std::chrono::seconds(spec.max_seconds);
    o.probe_options.min_time = std::min(o.probe_options.min_time, o.probe_options.max_time);
  }
  return o;
}

}  // namespace

std::string RealSystem::measure_method(const BenchSpec& spec) {
  const bench::BenchOptions o = bench_options(root_, spec);
  const std::string probe = bench::probe_method(o.probe_options);
  if (!o.model || o.llama_bench.empty()) return probe;
  // A model: llama-bench measures it where the board has one (measure() below), the probe
  // where it has none or it fails. Which binary is part of the method: another build of
  // llama.cpp is another measurement.
  if (auto bin = bench::find_program(o.llama_bench)) return bench::llama_bench_identity(*bin) + ", else the probe (" + probe + ")";
  return "no llama-bench, the probe (" + probe + ")";
}

Result<Throughput> RealSystem::measure(const BenchSpec& spec) {
  const bench::BenchOptions o = bench_options(root_, spec);
  auto r = FLEET_TRY(bench::run_bench(o));
  Throughput t;
  t.detail = throughput_message(r);
  t.health = bench::as_reported(r.health);
  if (r.llama && r.llama->generation) {
    t.tokens_per_s = r.llama->generation->avg_ts;
    // Its build (llama.cpp's commit) where it says: two builds compare only as two methods.
    const std::string& commit = r.llama->generation->build_commit;
    t.measured_by = "llama-bench tg" + std::to_string(r.llama->generation->n_gen) + " of " + spec.model +
                    (commit.empty() ? "" : " (build " + commit + ")");
  } else if (r.probe) {
    t.tokens_per_s = r.probe->tokens_per_s;
    t.measured_by = "probe " + r.probe->shape.name + " (synthetic weights, " + bench::probe_method(o.probe_options) + ")";
  }
  return t;
}

Result<void> RealSystem::reboot(RebootMode mode) {
  // --root DIR is a board's files in a folder (tests, rescue of a mounted card): rebooting
  // would reboot the machine the agent runs on, not that board. Tests and the virtual
  // boards reboot through their own System.
  std::error_code ec;
  const auto root = std::filesystem::weakly_canonical(root_, ec);
  if (ec || root != std::filesystem::path("/")) {
    return fail(Errc::unsupported, std::string("not rebooting: the board's root is ") + root_.string() +
                                       ", not /; a reboot would restart this machine, not that board. The state is "
                                       "saved: boot that board and boot-check carries on");
  }
  if (light_) {
    // fleet-sim restarts this board: it stops its namespaces, which ends this process too.
    const auto request = root_ / light::k_reboot_request;
    std::filesystem::create_directories(request.parent_path(), ec);
    return with_context(fs::write_file_atomic(request, std::string(mode == RebootMode::tryboot ? light::k_request_tryboot
                                                                                         : light::k_request_normal) + "\n"),
                        "asking fleet-sim for a reboot (a light board)");
  }
  if (std::error_code sd; std::filesystem::exists("/run/systemd/system", sd)) {
    // systemd is init (Raspberry Pi OS): an orderly reboot. Units stop, file systems are
    // unmounted, so bootfs's FAT is left clean rather than "not properly unmounted", and
    // systemd then calls reboot(2) with the same argument (systemctl(1): reboot [arg]).
    // --no-block: systemctl returns once the reboot is queued; the state is saved already.
    std::vector<std::string> argv = {"systemctl", "--no-block", "reboot"};
    if (mode == RebootMode::tryboot) argv.push_back("0 tryboot");
    auto queued = process::capture({argv, {}, {}, std::chrono::seconds(60)});
    if (queued) return {};
    std::fprintf(stderr, "fleet-agent: %s failed (%s); rebooting without systemd\n", process::render(argv).c_str(),
                 queued.error().message.c_str());
  }
  ::sync();
  long rc = 0;
  if (mode == RebootMode::tryboot) {
    // The Pi 5 firmware's one-shot flag: the next boot reads tryboot.txt, once. The kernel
    // prints "reboot: Restarting system with command '0 tryboot'" (kernel/reboot.c).
    static char arg[] = "0 tryboot";
    rc = ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART2, arg);
  } else {
    rc = ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, nullptr);
  }
  return fail(Errc::io, std::string("reboot(2) returned ") + std::to_string(rc) + ": " + std::strerror(errno));
}

std::int64_t RealSystem::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace fleet::agent
