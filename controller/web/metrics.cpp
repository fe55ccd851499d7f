#include "controller/web/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "common/fs.hpp"
#include "common/text.hpp"
#include "controller/status/status_service.hpp"
#include "controller/vocab/vocab.hpp"

namespace fleet::web {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::Registry;

constexpr double k_gb = 1e9;  // the agent reports GB/s (10^9 bytes), Prometheus wants bytes

}  // namespace

namespace {
// A number of a /proc file; Errc::parse naming the file otherwise.
Result<double> number(std::string_view text, const char* file) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{}) return fail(Errc::parse, std::string(file) + ": '" + std::string(text.substr(0, 32)) + "' is not a number");
  return v;
}
}  // namespace

Result<ProcessStats> read_process_stats() {
  ProcessStats p;
  // /proc/self/stat: fields after the command's closing parenthesis; utime and stime are the
  // 12th and 13th of them (14th and 15th of the line), starttime the 20th, in clock ticks.
  auto stat = FLEET_TRY(fs::read_file("/proc/self/stat"));
  auto close = stat.rfind(')');
  if (close == std::string::npos) return fail(Errc::parse, "/proc/self/stat: no ')'");
  auto f = text::split_words(std::string_view(stat).substr(close + 1));
  if (f.size() < 22) return fail(Errc::parse, "/proc/self/stat: " + std::to_string(f.size()) + " fields");
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  p.cpu_seconds = (FLEET_TRY(number(f[11], "/proc/self/stat")) + FLEET_TRY(number(f[12], "/proc/self/stat"))) / tick;
  p.virtual_bytes = FLEET_TRY(number(f[20], "/proc/self/stat"));
  p.resident_bytes = FLEET_TRY(number(f[21], "/proc/self/stat")) * page;
  // starttime is since boot: the boot time from /proc/stat's btime.
  auto sys = FLEET_TRY(fs::read_file("/proc/stat"));
  if (auto at = sys.find("\nbtime "); at != std::string::npos) {
    auto words = text::split_words(std::string_view(sys).substr(at + 7, 24));
    if (words.empty()) return fail(Errc::parse, "/proc/stat: btime without a number");
    p.start_time_seconds = FLEET_TRY(number(words[0], "/proc/stat")) + FLEET_TRY(number(f[19], "/proc/self/stat")) / tick;
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    p.open_fds += 1;
  }
  auto limits = FLEET_TRY(fs::read_file("/proc/self/limits"));
  if (auto at = limits.find("Max open files"); at != std::string::npos) {
    auto words = text::split_words(limits.substr(at + 14, limits.find('\n', at) - at - 14));
    if (!words.empty() && words[0] != "unlimited") p.max_fds = FLEET_TRY(number(words[0], "/proc/self/limits"));
  }
  return p;
}

std::string render_metrics(const fleet::v1::StatusSnapshot& snap, const ProcessStats* process,
                           const ServerCounters& counters) {
  Registry reg;

  // ---- per board: its latest row (the outcome of its last update) and latest verification.
  auto& info = BuildGauge().Name("fleet_board_kernel_info")
                   .Help("The kernel release a board runs, as a label (always 1)").Register(reg);
  auto& outcome = BuildGauge().Name("fleet_board_update_outcome")
                      .Help("1 for the outcome of the board's latest update (none while it runs), 0 for the others")
                      .Register(reg);
  auto& step = BuildGauge().Name("fleet_board_update_step")
                   .Help("1 for the step the board's latest update is at, 0 for the others").Register(reg);
  auto& check = BuildGauge().Name("fleet_board_check_pass")
                    .Help("1 if the check of the board's latest verification passed, 0 if it failed").Register(reg);
  auto& warn = BuildGauge().Name("fleet_board_check_warning")
                   .Help("1 if the check passed with a warning someone should act on").Register(reg);
  auto& tps = BuildGauge().Name("fleet_board_tokens_per_second")
                  .Help("Token generation rate the agent's probe measured after the trial boot").Register(reg);
  auto& eff = BuildGauge().Name("fleet_board_effective_memory_bandwidth_bytes_per_second")
                  .Help("Weight bytes per token times tokens per second (the probe)").Register(reg);
  auto& rd = BuildGauge().Name("fleet_board_memory_read_bandwidth_bytes_per_second")
                 .Help("Memory read bandwidth, all threads, with huge pages").Register(reg);
  auto& thp = BuildGauge().Name("fleet_board_probe_weights_huge_page_ratio")
                 .Help("Share of the probe's weights backed by transparent huge pages; advice: none (as llama.cpp's), "
                       "madvise or nohugepage")
                 .Register(reg);
  auto& baseline = BuildGauge().Name("fleet_board_baseline_tokens_per_second")
                       .Help("The committed kernel's tokens/s, measured the same way at install (the trial's baseline)")
                       .Register(reg);
  auto& change = BuildGauge().Name("fleet_board_tokens_per_second_change_ratio")
                     .Help("(trial - committed) / committed tokens/s: 0.079 is 7.9% faster").Register(reg);
  auto& spread = BuildGauge().Name("fleet_board_token_time_spread_ratio")
                     .Help("Interquartile range of one token's time over its median, in the probe's measurement")
                     .Register(reg);
  auto& timed = BuildGauge().Name("fleet_board_tokens_timed")
                    .Help("Tokens the probe timed for its figure").Register(reg);
  auto& llama = BuildGauge().Name("fleet_board_llama_bench_tokens_per_second")
                    .Help("llama-bench token generation on the board's model, where it ran").Register(reg);
  auto& temp = BuildGauge().Name("fleet_board_temperature_celsius")
                   .Help("The hottest thermal zone while the board was measured").Register(reg);
  auto& uv = BuildGauge().Name("fleet_board_undervoltage")
                 .Help("1 if the board reported under-voltage while it was measured").Register(reg);
  auto& updated = BuildGauge().Name("fleet_board_last_update_timestamp_seconds")
                      .Help("When the board's row last changed (a step, an outcome or a report)").Register(reg);
  auto& last_report = BuildGauge().Name("fleet_board_last_report_timestamp_seconds")
                          .Help("When the board's agent last reported to the controller").Register(reg);
  for (const auto& b : snap.boards()) {
    const std::string& board = b.board();
    info.Add({{"board", board}, {"kernel_release", b.kernel_release()}}).Set(1);
    for (auto o : vocab::all_outcomes()) {
      const std::string n = vocab::name(o);
      outcome.Add({{"board", board}, {"outcome", n.empty() ? "none" : n}}).Set(b.outcome() == n ? 1 : 0);
    }
    for (auto s : vocab::all_steps()) {
      step.Add({{"board", board}, {"step", vocab::name(s)}}).Set(b.step() == vocab::name(s) ? 1 : 0);
    }
    for (const auto& c : b.checks()) {
      check.Add({{"board", board}, {"check", c.property()}}).Set(c.pass() ? 1 : 0);
      warn.Add({{"board", board}, {"check", c.property()}}).Set(c.warning().empty() ? 0 : 1);
    }
    updated.Add({{"board", board}}).Set(static_cast<double>(b.updated_unix_ms()) / 1000.0);
    if (b.last_report_unix_ms() > 0) {
      last_report.Add({{"board", board}}).Set(static_cast<double>(b.last_report_unix_ms()) / 1000.0);
    }
    if (!b.has_throughput()) continue;
    const auto& t = b.throughput();
    if (t.tokens_per_s() > 0) {
      tps.Add({{"board", board}, {"shape", t.shape()}, {"kernel_release", b.kernel_release()}}).Set(t.tokens_per_s());
      eff.Add({{"board", board}, {"shape", t.shape()}}).Set(t.effective_gbps() * k_gb);
      if (auto w = controller::weights_thp(t)) thp.Add({{"board", board}, {"advice", w->advice}}).Set(w->share);
      if (t.baseline_tokens_per_s() > 0) {
        baseline.Add({{"board", board}, {"kernel_release", t.baseline_release()}}).Set(t.baseline_tokens_per_s());
      }
      if (auto c = controller::throughput_change(t)) change.Add({{"board", board}}).Set(*c);
      if (t.tokens_timed() > 0) {
        spread.Add({{"board", board}}).Set(t.spread());
        timed.Add({{"board", board}}).Set(t.tokens_timed());
      }
    }
    if (t.read_gbps() > 0) rd.Add({{"board", board}}).Set(t.read_gbps() * k_gb);
    if (t.llama_tg_ts() > 0) llama.Add({{"board", board}, {"model", t.model()}}).Set(t.llama_tg_ts());
    if (t.has_temperature_c()) temp.Add({{"board", board}}).Set(t.temperature_c());
    if (t.has_undervoltage()) uv.Add({{"board", board}}).Set(t.undervoltage() ? 1 : 0);
  }

  // ---- per rollout (the recent ones the snapshot holds).
  auto& r_state = BuildGauge().Name("fleet_rollout_state")
                      .Help("1 for the rollout's state: running, stopped (its gate stopped it), done, dry-run")
                      .Register(reg);
  auto& r_steps = BuildGauge().Name("fleet_rollout_boards").Help("Boards of the rollout at each step").Register(reg);
  auto& r_outcomes = BuildGauge().Name("fleet_rollout_boards_by_outcome")
                         .Help("Finished boards of the rollout by outcome").Register(reg);
  auto& r_waves = BuildGauge().Name("fleet_rollout_waves").Help("Waves of the rollout").Register(reg);
  auto& r_waves_done = BuildGauge().Name("fleet_rollout_waves_done")
                           .Help("Waves whose every board has finished").Register(reg);
  auto& r_started = BuildGauge().Name("fleet_rollout_start_timestamp_seconds")
                        .Help("When the rollout started").Register(reg);
  for (const auto& r : snap.rollouts()) {
    const std::string& id = r.id();
    for (auto s : vocab::all_rollout_states()) {
      r_state.Add({{"rollout", id}, {"state", vocab::name(s)}}).Set(r.state() == vocab::name(s) ? 1 : 0);
    }
    std::map<std::string, int> by_step, by_outcome;
    std::map<int, bool> wave_done;
    for (const auto& b : r.boards()) {
      ++by_step[b.step()];
      const bool done = b.step() == vocab::name(vocab::Step::done);
      if (done) ++by_outcome[b.outcome().empty() ? "none" : b.outcome()];
      auto [it, fresh] = wave_done.try_emplace(b.wave(), done);
      if (!fresh) it->second = it->second && done;
    }
    for (auto s : vocab::all_steps()) r_steps.Add({{"rollout", id}, {"step", vocab::name(s)}}).Set(by_step[vocab::name(s)]);
    for (const auto& [o, n] : by_outcome) r_outcomes.Add({{"rollout", id}, {"outcome", o}}).Set(n);
    int done = 0;
    for (const auto& [w, d] : wave_done) done += d ? 1 : 0;
    r_waves.Add({{"rollout", id}}).Set(static_cast<double>(wave_done.size()));
    r_waves_done.Add({{"rollout", id}}).Set(done);
    r_started.Add({{"rollout", id}}).Set(static_cast<double>(r.started_unix_ms()) / 1000.0);
  }

  // ---- the controller (left out, not zero, when /proc could not be read).
  if (process) {
    BuildCounter().Name("process_cpu_seconds_total").Help("User and system CPU time of fleetctl").Register(reg)
        .Add({}).Increment(process->cpu_seconds);
    BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory of fleetctl").Register(reg)
        .Add({}).Set(process->resident_bytes);
    BuildGauge().Name("process_virtual_memory_bytes").Help("Virtual memory of fleetctl").Register(reg)
        .Add({}).Set(process->virtual_bytes);
    BuildGauge().Name("process_start_time_seconds").Help("When fleetctl started, since the epoch").Register(reg)
        .Add({}).Set(process->start_time_seconds);
    BuildGauge().Name("process_open_fds").Help("Open file descriptors of fleetctl").Register(reg)
        .Add({}).Set(process->open_fds);
    if (process->max_fds > 0) {
      BuildGauge().Name("process_max_fds").Help("fleetctl's limit of open file descriptors").Register(reg)
          .Add({}).Set(process->max_fds);
    }
  }
  BuildCounter().Name("fleet_http_requests_total").Help("HTTP requests fleetctl serve answered").Register(reg)
      .Add({}).Increment(static_cast<double>(counters.http_requests));
  BuildCounter().Name("fleet_http_unauthorized_requests_total")
      .Help("HTTP requests refused for a missing or wrong token").Register(reg)
      .Add({}).Increment(static_cast<double>(counters.http_refused));
  BuildCounter().Name("fleet_metrics_scrapes_total").Help("Scrapes of /metrics").Register(reg)
      .Add({}).Increment(static_cast<double>(counters.scrapes));

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, reg.Collect());
  return out.str();
}

}  // namespace fleet::web
