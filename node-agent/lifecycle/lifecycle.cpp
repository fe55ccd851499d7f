#include "node-agent/lifecycle/lifecycle.hpp"

#include "node-agent/lifecycle/compare.hpp"

#include <algorithm>
#include <set>

#include "common/bundle.hpp"
#include "common/contract.hpp"
#include "common/fs.hpp"
#include "common/text.hpp"
#include "node-agent/bench/gguf.hpp"
#include "node-agent/bench/health.hpp"
#include "node-agent/lifecycle/wire.hpp"
#include "proto/codec.hpp"

namespace fleet::agent {
namespace stdfs = std::filesystem;

namespace {

struct Transition {
  State from;
  Event event;
  State to;
  Action action;
};

// The whole flow in one place. A (state, event) pair not listed here is refused.
// A row into a working state saves that state first, then does its action: a crash
// resumes in it. A row into idle concludes an update: its cleanup runs first, then the
// report goes to the outbox, then one save records the outcome and the new committed
// slot; a crash before that save redoes the (idempotent) cleanup at the next boot.
constexpr Transition k_table[] = {
    // from                event                  to                     action
    {State::idle,           Event::install,        State::installing,     Action::copy_bundle},
    {State::idle,           Event::rollback,       State::rolling_back,   Action::rollback_config},
    {State::installing,     Event::install_done,   State::installed,      Action::report_installed},
    {State::installing,     Event::install_error,  State::idle,           Action::abort_install},
    {State::installing,     Event::booted_target,  State::idle,           Action::abort_install},
    {State::installing,     Event::booted_other,   State::idle,           Action::abort_install},
    {State::installed,      Event::install,        State::installing,     Action::copy_bundle},
    {State::installed,      Event::tryboot,        State::tryboot,        Action::reboot_tryboot},
    {State::tryboot,        Event::booted_target,  State::verifying,      Action::run_checks},
    {State::tryboot,        Event::booted_other,   State::idle,           Action::boot_failed},
    {State::verifying,      Event::booted_target,  State::verifying,      Action::run_checks},
    {State::verifying,      Event::booted_other,   State::idle,           Action::boot_failed},
    {State::verifying,      Event::checks_passed,  State::committing,     Action::commit_config},
    {State::verifying,      Event::checks_failed,  State::verify_failed,  Action::fail_and_reboot},
    {State::committing,     Event::config_written, State::idle,           Action::finish_commit},
    {State::committing,     Event::booted_target,  State::committing,     Action::commit_config},
    {State::committing,     Event::booted_other,   State::committing,     Action::commit_and_reboot},
    {State::verify_failed,  Event::booted_other,   State::idle,           Action::rolled_back},
    {State::verify_failed,  Event::booted_target,  State::verify_failed,  Action::reboot_normal},
    {State::rolling_back,   Event::booted_target,  State::idle,           Action::finish_rollback},
    {State::rolling_back,   Event::booted_other,   State::rolling_back,   Action::rollback_config},
    {State::tryboot,        Event::loop_limit,     State::idle,           Action::give_up},
    {State::verifying,      Event::loop_limit,     State::idle,           Action::give_up},
    {State::committing,     Event::loop_limit,     State::idle,           Action::give_up},
    {State::verify_failed,  Event::loop_limit,     State::idle,           Action::give_up},
    {State::rolling_back,   Event::loop_limit,     State::idle,           Action::give_up},
};

constexpr const char* k_event_names[] = {"install",       "install_done", "install_error", "tryboot",
                                         "booted_target", "booted_other", "checks_passed", "checks_failed",
                                         "config_written", "rollback",    "loop_limit"};

std::string key_of(const std::string& word) { return word.substr(0, word.find('=')); }

}  // namespace

const char* event_name(Event e) { return k_event_names[static_cast<int>(e)]; }

std::string config_with_prefix(const std::string& config, const std::string& slot) {
  std::string out;
  size_t pos = 0;
  while (pos < config.size()) {
    size_t nl = config.find('\n', pos);
    std::string line = config.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? config.size() : nl + 1;
    std::string trimmed = line.substr(std::min(line.find_first_not_of(" \t"), line.size()));
    if (trimmed.starts_with("os_prefix=")) continue;
    if (trimmed == "# fleet-agent: the committed slot" || trimmed == "# fleet-agent: the slot on trial") continue;
    out += line + "\n";
  }
  while (out.ends_with("[all]\n")) out.resize(out.size() - 6);
  if (!slot.empty()) {
    // [all] first: the line must not land inside a conditional section such as [pi4].
    out += "[all]\nos_prefix=" + slot + "/\n";
  }
  return out;
}

std::string prefix_of(const std::string& config) {
  std::string prefix;
  for (const auto& line : text::split_words(config)) {
    if (line.starts_with("os_prefix=")) prefix = line.substr(10);
  }
  while (prefix.ends_with("/")) prefix.pop_back();
  return prefix;
}

std::string merge_cmdline(const std::string& base, const std::vector<std::string>& extra) {
  std::vector<std::string> words = text::split_words(base);
  for (const auto& w : extra) {
    auto same = std::find_if(words.begin(), words.end(), [&](const std::string& x) {
      return w.find('=') != std::string::npos ? key_of(x) == key_of(w) : x == w;
    });
    if (same != words.end()) *same = w;
    else words.push_back(w);
  }
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out + "\n";
}

Result<AgentState> Agent::load() {
  if (auto text = ctx_.disk.read(ctx_.paths.state_file())) {
    st_ = FLEET_TRY(parse_state(*text, ctx_.paths.state_file().string()));
    return st_;
  }
  auto config = ctx_.disk.read(ctx_.paths.boot() / "config.txt");
  if (!config) return fail(Errc::not_found, "no " + (ctx_.paths.boot() / "config.txt").string() + ": not a Pi boot partition");
  st_ = AgentState{};
  // A running release that is not a kernel release (a damaged /proc?) is unknown, not a path.
  auto running = ctx_.system.running_release();
  st_.committed = Slot{prefix_of(*config), bundle::is_kernel_release(running) ? running : ""};
  if (!is_slot_folder(st_.committed.name)) {
    return fail(Errc::invalid_input, (ctx_.paths.boot() / "config.txt").string() + ": os_prefix '" +
                                         st_.committed.name + "' is not a folder of the boot partition");
  }
  return st_;
}

Result<void> Agent::save() {
  FLEET_TRY(ctx_.disk.mkdirs(ctx_.paths.state_dir()));
  return ctx_.disk.write_atomic(ctx_.paths.state_file(), state_to_json(st_));
}

std::uint64_t Agent::last_sequence() {
  // The highest number in the outbox or already sent: a report written just before a
  // crash, whose state save was lost, keeps its number.
  std::uint64_t seq = st_.sequence;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(ctx_.paths.outbox(), ec)) {
    auto name = e.path().filename().string();
    if (name.size() > 5 && name.ends_with(".json")) {
      try {
        seq = std::max<std::uint64_t>(seq, std::stoull(name.substr(0, name.size() - 5)));
      } catch (const std::exception&) {
      }
    }
  }
  if (auto sent = ctx_.disk.read(ctx_.paths.outbox() / k_sent_marker)) {
    try {
      seq = std::max<std::uint64_t>(seq, std::stoull(*sent));
    } catch (const std::exception&) {
    }
  }
  return seq;
}

Result<void> Agent::report(AgentState& state, Phase phase, const std::string& message, const Report* checks) {
  state.sequence = last_sequence() + 1;
  fleet::v1::PhaseReport r;
  r.set_board_id(ctx_.board_id);
  r.set_rollout_id(st_.target ? st_.target->rollout_id : "");
  r.set_phase(wire_phase(phase));
  r.set_running_release(ctx_.system.running_release());
  r.set_target_release(st_.target ? st_.target->slot.release : state.committed.release);
  r.set_message(message);
  r.set_sequence(state.sequence);
  r.set_phase_entered_unix_ms(ctx_.system.now_ms());
  if (checks) {
    auto v = verification_message(*checks);
    *r.mutable_checks() = v.checks();
    r.set_mem_total_kb(v.memory().mem_total_kb());
    r.set_mem_available_kb(v.memory().mem_available_kb());
    if (checks == &last_report_ && last_throughput_) *r.mutable_throughput() = *last_throughput_;
  }
  // The outbox file is the report's JSON mapping (proto/codec.hpp), as send-reports reads it.
  auto text = FLEET_TRY(wire::to_json(r));
  // The outbox is sent later (fleet-agent send-reports): the boot flow never waits for
  // the controller. Numbered files keep the order.
  FLEET_TRY(ctx_.disk.mkdirs(ctx_.paths.outbox()));
  char name[32];
  std::snprintf(name, sizeof name, "%012llu.json", static_cast<unsigned long long>(state.sequence));
  return ctx_.disk.write_atomic(ctx_.paths.outbox() / name, text + "\n");
}

Result<void> Agent::fire(Event event) {
  const Transition* t = nullptr;
  for (const auto& row : k_table) {
    if (row.from == st_.state && row.event == event) t = &row;
  }
  if (!t) {
    return fail(Errc::invalid_input, std::string("cannot ") + event_name(event) + " while " + state_name(st_.state) +
                                         (st_.target ? " (update to " + st_.target->slot.release + ")" : ""));
  }
  if (t->to == State::idle) return conclude(t->action);

  if (t->to != st_.state) st_.boots_in_state = 0;
  st_.state = t->to;
  FLEET_TRY(save());  // on entering, before the work: a crash resumes here

  switch (t->action) {
    case Action::copy_bundle: {
      auto next = copy_bundle();
      if (!next) {
        reason_ = next.error().message;
        FLEET_TRY(fire(Event::install_error));
        return std::unexpected(next.error());
      }
      return fire(*next);
    }
    case Action::report_installed:
      FLEET_TRY(report(st_, Phase::installed,
                       "slot " + st_.target->slot.name + " ready for a trial boot" +
                           (signer_.empty() ? std::string() : " (bundle signed by key " + signer_ + ")")));
      return save();
    case Action::reboot_tryboot:
      FLEET_TRY(report(st_, Phase::tryboot, "rebooting once into " + st_.target->slot.name));
      FLEET_TRY(save());
      return ctx_.system.reboot(RebootMode::tryboot);
    case Action::run_checks:
      return fire(FLEET_TRY(run_checks()));
    case Action::commit_config:
      FLEET_TRY(write_config_for(st_.target->slot));
      return fire(Event::config_written);
    case Action::commit_and_reboot:
      FLEET_TRY(write_config_for(st_.target->slot));
      return ctx_.system.reboot(RebootMode::normal);
    case Action::fail_and_reboot:
      FLEET_TRY(report(st_, Phase::verify_failed, st_.note, &last_report_));
      FLEET_TRY(save());
      return ctx_.system.reboot(RebootMode::normal);
    case Action::reboot_normal:
      return ctx_.system.reboot(RebootMode::normal);
    case Action::rollback_config:
      FLEET_TRY(write_config_for(st_.target->slot));
      return ctx_.system.reboot(RebootMode::normal);
    default:
      return fail(Errc::unsupported, std::string("transition table: no work for state ") + state_name(t->to));
  }
}

Result<void> Agent::conclude(Action action) {
  AgentState next = st_;
  Phase phase = Phase::committed;
  std::string message;
  const Report* checks = nullptr;
  switch (action) {
    case Action::abort_install:
      FLEET_TRY(abort_install());
      phase = Phase::install_failed;
      message = "install failed: " + (reason_.empty() ? std::string("interrupted (power loss or reboot)") : reason_);
      break;
    case Action::boot_failed:
      FLEET_TRY(remove_target_slot());
      phase = Phase::boot_failed;
      message = "boot failed, rolled back: " + st_.target->slot.release + " did not come up (running " +
                ctx_.system.running_release() + ")";
      break;
    case Action::rolled_back:
      FLEET_TRY(remove_target_slot());
      phase = Phase::rolled_back;
      message = "verification failed, rolled back: " + st_.note;
      break;
    case Action::finish_commit:
      next.previous = st_.committed;
      next.committed = st_.target->slot;
      if (last_trial_) next.measured = last_trial_;  // the next install's baseline, for a day
      FLEET_TRY(remove_old_slots(next));
      phase = Phase::committed;
      message = "committed " + next.committed.release + " in slot " + next.committed.name;
      checks = &last_report_;
      break;
    case Action::finish_rollback:
      next.previous = st_.committed;
      next.committed = st_.target->slot;
      phase = Phase::rolled_back;
      message = "rolled back to " + next.committed.release + " on request";
      break;
    case Action::give_up:
      FLEET_TRY(write_config_for(st_.committed));
      FLEET_TRY(remove_target_slot());
      phase = Phase::boot_failed;
      message = "reboot loop: " + std::to_string(k_max_boots_in_state) + " boots in state " + state_name(st_.state) +
                " without progress; back to the committed kernel " + st_.committed.release;
      break;
    default:
      return fail(Errc::unsupported, "transition table: an action that does not conclude leads to idle");
  }
  next.last = Outcome{phase, ctx_.system.running_release(), message, ctx_.system.now_ms()};
  FLEET_TRY(report(next, phase, message, checks));
  next.state = State::idle;
  next.boots_in_state = 0;
  next.target.reset();
  next.note.clear();
  st_ = next;
  return save();
}

Result<stdfs::path> Agent::slot_dir(const std::string& name, std::string_view suffix) const {
  // Only names the agent makes itself: a corrupt state file must not name /etc or "..".
  if (!is_slot_name(name)) {
    return fail(Errc::invalid_input, "'" + name + "' is not a slot name fleet-agent makes (fleet-<12 hex digits>); "
                                     "not touching it");
  }
  return ctx_.paths.boot() / (name + std::string(suffix));
}

Result<stdfs::path> Agent::modules_dir(const std::string& release, std::string_view suffix) const {
  if (!bundle::is_kernel_release(release)) {
    return fail(Errc::invalid_input, "'" + release + "' is not a kernel release; not touching /lib/modules for it");
  }
  return ctx_.paths.modules() / (release + std::string(suffix));
}

Result<Event> Agent::copy_bundle() {
  const auto& t = *st_.target;
  const stdfs::path boot = ctx_.paths.boot();
  const stdfs::path partial = FLEET_TRY(slot_dir(t.slot.name, ".partial"));
  const stdfs::path slot = FLEET_TRY(slot_dir(t.slot.name));
  FLEET_TRY(ctx_.disk.remove_all(partial));
  FLEET_TRY(ctx_.disk.mkdirs(partial));
  // Exactly the files the manifest lists (checked and, when keys are trusted, signed), each
  // hashed again as it is copied: nothing else in the bundle folder reaches the board.
  const std::string boot_prefix = "boot/";
  const std::string modules_prefix = "modules/lib/modules/" + t.slot.release + "/";
  std::set<stdfs::path> made;  // one mkdirs (and its fsync) per folder, not per file
  auto copy_to = [&](const stdfs::path& top, const std::string& rel, const std::string& path,
                     const bundle::FileEntry& e) -> Result<void> {
    const stdfs::path dst = top / rel;
    if (dst.parent_path() != top && made.insert(dst.parent_path()).second) FLEET_TRY(ctx_.disk.mkdirs(dst.parent_path()));
    return ctx_.disk.copy_file(bundle_ / path, dst, e.sha256);
  };
  for (const auto& [path, e] : manifest_.files) {
    if (path.starts_with(boot_prefix)) FLEET_TRY(copy_to(partial, path.substr(boot_prefix.size()), path, e));
  }
  // The command line of the committed kernel, with the bundle's words.
  // (A committed prefix may be the user's own os_prefix: read from, never removed.)
  const stdfs::path committed_dir = boot / st_.committed.name;
  std::string base = ctx_.disk.read(committed_dir / "cmdline.txt").value_or(ctx_.disk.read(boot / "cmdline.txt").value_or(""));
  FLEET_TRY(ctx_.disk.write_atomic(partial / "cmdline.txt", merge_cmdline(base, manifest_.cmdline_extra)));
  FLEET_TRY(ctx_.disk.copy_file(bundle_ / bundle::k_contract, partial / k_slot_contract,
                                manifest_.files.at(bundle::k_contract).sha256));

  bool has_modules = false;
  for (const auto& [path, e] : manifest_.files) has_modules = has_modules || path.starts_with(modules_prefix);
  if (has_modules) {
    const stdfs::path mdst = FLEET_TRY(modules_dir(t.slot.release, ".partial"));
    const stdfs::path mfinal = FLEET_TRY(modules_dir(t.slot.release));
    FLEET_TRY(ctx_.disk.remove_all(mdst));
    FLEET_TRY(ctx_.disk.mkdirs(mdst));
    for (const auto& [path, e] : manifest_.files) {
      if (path.starts_with(modules_prefix)) FLEET_TRY(copy_to(mdst, path.substr(modules_prefix.size()), path, e));
    }
    FLEET_TRY(ctx_.disk.remove_all(mfinal));
    FLEET_TRY(ctx_.disk.rename(mdst, mfinal));
  }
  FLEET_TRY(ctx_.disk.remove_all(slot));
  FLEET_TRY(ctx_.disk.rename(partial, slot));
  // tryboot.txt: a whole copy of config.txt pointing at the slot, so the trial boot needs
  // nothing else and config.txt is never edited in place.
  std::string config = ctx_.disk.read(boot / "config.txt").value_or("");
  FLEET_TRY(ctx_.disk.write_atomic(boot / "tryboot.txt", config_with_prefix(config, t.slot.name)));
  return Event::install_done;
}

Result<void> Agent::abort_install() {
  if (st_.target) {
    const stdfs::path partial = FLEET_TRY(slot_dir(st_.target->slot.name, ".partial"));
    const stdfs::path modules_partial = FLEET_TRY(modules_dir(st_.target->slot.release, ".partial"));
    FLEET_TRY(ctx_.disk.remove_all(partial));
    FLEET_TRY(ctx_.disk.remove_all(modules_partial));
    FLEET_TRY(remove_target_slot());
  }
  return ctx_.disk.remove_all(ctx_.paths.boot() / "tryboot.txt");
}

Result<void> Agent::remove_old_slots(const AgentState& next) {
  // Only the committed slot and the one kept for rollback stay.
  std::error_code ec;
  std::vector<stdfs::path> old;
  for (const auto& e : stdfs::directory_iterator(ctx_.paths.boot(), ec)) {
    auto name = e.path().filename().string();
    if (!e.is_directory() || !name.starts_with(k_slot_prefix)) continue;
    if (name == next.committed.name || (next.previous && name == next.previous->name)) continue;
    old.push_back(e.path());
  }
  for (const auto& p : old) FLEET_TRY(ctx_.disk.remove_all(p));
  return ctx_.disk.remove_all(ctx_.paths.boot() / "tryboot.txt");
}

Result<void> Agent::remove_target_slot() {
  if (!st_.target) return {};
  const auto& slot = st_.target->slot;
  // Never the slot config.txt boots, nor the one kept for rollback.
  if (slot.name.empty() || slot.name == st_.committed.name || (st_.previous && slot.name == st_.previous->name)) {
    return {};
  }
  const stdfs::path dir = FLEET_TRY(slot_dir(slot.name));
  FLEET_TRY(ctx_.disk.remove_all(dir));
  if (slot.release != st_.committed.release && (!st_.previous || slot.release != st_.previous->release)) {
    const stdfs::path modules = FLEET_TRY(modules_dir(slot.release));
    FLEET_TRY(ctx_.disk.remove_all(modules));
  }
  return {};
}

Result<Event> Agent::run_checks() {
  auto dir = slot_dir(st_.target->slot.name);
  if (!dir) {
    st_.note = dir.error().message;
    return Event::checks_failed;
  }
  auto text = ctx_.disk.read(*dir / k_slot_contract);
  if (!text) {
    st_.note = "the slot's contract is missing";
    return Event::checks_failed;
  }
  auto contract = parse_contract(*text, k_slot_contract);
  if (!contract) {
    st_.note = contract.error().message;
    return Event::checks_failed;
  }
  last_report_ = ctx_.system.verify(*contract);
  last_throughput_.reset();
  // Throughput only on a kernel that passed its contract: a failing one goes back anyway.
  if (last_report_.ok() && st_.target->bench) measure_throughput(*st_.target->bench);
  if (last_report_.ok()) return Event::checks_passed;
  std::string failed;
  for (const auto& c : last_report_.checks) {
    if (!c.pass) failed += (failed.empty() ? "" : "; ") + c.property + " expected " + c.expected + ", got " + c.actual;
  }
  st_.note = failed;
  return Event::checks_failed;
}

namespace {

// A measurement as the comparison keeps it. The probe gives its spread and token count;
// llama-bench its standard deviation over the mean of its repetitions (3).
// The request and how this agent would measure it: a kept figure serves a later request
// only if both are the same (an agent whose probe changed measures again).
std::string spec_key(System& system, const BenchSpec& spec) {
  const std::string method = system.measure_method(spec);
  return method.empty() ? bench_key(spec) : bench_key(spec) + "; " + method;
}

Measurement measurement_of(const Throughput& t, const std::string& release, const BenchSpec& spec,
                           const std::string& key_of_spec, std::int64_t now) {
  Measurement m;
  m.release = release;
  // What really measured (the shape auto chose, llama-bench or the probe), and how many threads.
  m.key = t.measured_by + ", " + (spec.threads > 0 ? std::to_string(spec.threads) + " threads" : "all threads");
  m.spec = key_of_spec;
  m.tokens_per_s = t.tokens_per_s;
  m.at_ms = now;
  m.cut_short = t.detail.cut_short();
  if (t.detail.llama_tg_ts() > 0) {
    m.spread = t.detail.llama_tg_stddev() / t.detail.llama_tg_ts();
    m.tokens = 3;  // llama-bench's repetitions (-r 3)
  } else {
    m.spread = t.detail.spread();
    m.tokens = static_cast<int>(t.detail.tokens_timed());
  }
  return m;
}

// A measurement of the committed kernel younger than this is reused as the baseline of the
// next install (the last trial kernel's, once committed): a board updated twice in an hour
// is not measured twice on the same kernel.
constexpr std::int64_t k_baseline_max_age_ms = 24LL * 3600 * 1000;

}  // namespace

void Agent::measure_throughput(const BenchSpec& spec) {
  Check c;
  c.property = "tokens_per_s";
  c.expected = spec.min_tokens_per_s > 0 ? ">= " + format_rate(spec.min_tokens_per_s) : "measured";
  auto t = ctx_.system.measure(spec);
  last_trial_.reset();
  std::optional<Check> gate;
  if (t) {
    c.actual = format_rate(t->tokens_per_s);
    c.pass = t->tokens_per_s >= spec.min_tokens_per_s;
    c.detail = t->measured_by;
    // A hot or under-powered board measures low whatever its kernel: say so beside the figure.
    if (auto w = bench::health_warning(t->health); !w.empty()) c.detail += "; " + w;
    last_throughput_ = t->detail;
    last_trial_ = measurement_of(*t, ctx_.system.running_release(), spec, spec_key(ctx_.system, spec), ctx_.system.now_ms());
    const auto& base = st_.target->baseline;
    if (base) {
      auto& d = *last_throughput_;
      d.set_baseline_tokens_per_s(base->tokens_per_s);
      d.set_baseline_release(base->release);
      d.set_baseline_spread(base->spread);
      d.set_baseline_tokens_timed(static_cast<std::uint32_t>(std::max(0, base->tokens)));
      c.detail += "; " + change_text(*base, *last_trial_);
      d.set_baseline_measured_by(base->key);
      if (spec.max_regression > 0) gate = regression_check(*base, *last_trial_, spec.max_regression);
    } else {
      last_throughput_->set_baseline_note(st_.target->baseline_note);
      if (spec.max_regression > 0) {
        // Without the committed kernel's figure nothing can be compared: said, not failed.
        gate = not_gated(spec.max_regression, "no figure of the committed kernel: " + st_.target->baseline_note);
      }
    }
  } else {
    // Without a minimum a failed measurement is reported, not held against the kernel.
    c.actual = "none";
    c.pass = spec.min_tokens_per_s <= 0;
    c.detail = "the benchmark failed: " + t.error().message;
    // Gated, and the committed kernel measured: the trial kernel that cannot be measured
    // the same way fails (the failure may be the kernel's).
    if (spec.max_regression > 0) {
      const auto& base = st_.target->baseline;
      gate = base ? Check{"tokens_per_s_change", ">= -" + percent_text(spec.max_regression), "not measured", false,
                          "the committed kernel " + base->release + " measured " + format_rate(base->tokens_per_s) +
                              " t/s; the trial kernel could not be measured: " + t.error().message, ""}
                  : not_gated(spec.max_regression, "neither kernel was measured");
    }
  }
  last_report_.checks.push_back(std::move(c));
  if (gate) last_report_.checks.push_back(std::move(*gate));
}

std::string format_rate(double tokens_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", tokens_per_s);
  return buf;
}

Result<void> Agent::write_config_for(const Slot& slot) {
  const stdfs::path config = ctx_.paths.boot() / "config.txt";
  std::string text = ctx_.disk.read(config).value_or("");
  std::string next = config_with_prefix(text, slot.name);
  if (next == text) return {};
  return ctx_.disk.write_atomic(config, next);
}

Result<void> Agent::install(const stdfs::path& bundle_dir, const std::string& rollout_id,
                            const std::optional<BenchSpec>& bench) {
  FLEET_TRY(load());
  // Everything is checked before anything is written.
  // One read of manifest.json: the signature is checked over the very bytes whose file list
  // (and sha256s) is verified and then installed.
  std::string manifest_text;
  auto manifest = FLEET_TRY(bundle::verify(bundle_dir, &manifest_text));
  std::string signer;
  if (!ctx_.trusted_keys.empty()) {
    auto signed_by = bundle::check_signature(bundle_dir, ctx_.trusted_keys, manifest_text);
    if (!signed_by) return fail(signed_by.error().code, signed_by.error().message + "; nothing was changed");
    signer = *signed_by;
  }
  if (!manifest.files.contains(bundle::k_contract)) {
    return fail(Errc::invalid_input, bundle_dir.string() + ": the bundle has no contract.json; nothing was changed");
  }
  auto contract_text = fs::read_regular_file(bundle_dir / bundle::k_contract);
  if (!contract_text) return fail(Errc::invalid_input, contract_text.error().message + "; nothing was changed");
  FLEET_TRY(parse_contract(*contract_text, (bundle_dir / bundle::k_contract).string()));
  // A trial boot is a trial only if the bootloader honours the tryboot flag: an old EEPROM
  // is refused here, before anything is written, not discovered after the reboot.
  auto loader = ctx_.system.bootloader();
  if (!loader) return fail(loader.error().code, loader.error().message + "; nothing was changed");
  if (*loader) {
    if (auto why = bootloader::tryboot_problem(**loader); !why.empty()) {
      return fail(Errc::unsupported, why + ". Update the bootloader (rpi-eeprom-update -a, then reboot) and install "
                                           "again; nothing was changed");
    }
  }
  Slot slot{std::string(k_slot_prefix) + manifest.build_key.substr(0, 12), manifest.kernel_release};
  if (slot.name == st_.committed.name) {
    return fail(Errc::invalid_input, "bundle " + manifest.build_key.substr(0, 12) + " (" + slot.release +
                                         ") is already the committed kernel: nothing to do");
  }
  if (slot.release == st_.committed.release) {
    return fail(Errc::invalid_input, "kernel release " + slot.release +
                                         " is already installed from another build; give each build its own "
                                         "LOCALVERSION so their modules do not collide");
  }
  if (bench && !bench->model.empty()) {
    // A model named for the benchmark must be there now, not found missing after the reboot.
    auto model = ctx_.paths.root / stdfs::path(bench->model).relative_path();
    FLEET_TRY(with_context(bench::read_gguf(model), "the benchmark model (fleet_model)"));
  } else if (bench && bench->shape != "auto" && !bench::shape_named(bench->shape)) {
    return fail(Errc::invalid_input, "unknown benchmark shape '" + bench->shape + "' (7b, 3b, 1b, 110m, 15m or auto)");
  }
  std::uint64_t boot_bytes = 4096, module_bytes = 0;
  for (const auto& [path, e] : manifest.files) {
    if (path.starts_with("boot/")) boot_bytes += e.size;
    if (path.starts_with("modules/")) module_bytes += e.size;
  }
  // Half again: the old slot stays until the commit, and FAT rounds files up to clusters.
  auto need = boot_bytes + boot_bytes / 2;
  auto free_boot = FLEET_TRY(ctx_.disk.free_bytes(ctx_.paths.boot()));
  if (free_boot < need) {
    return fail(Errc::invalid_input, "the boot partition " + ctx_.paths.boot().string() + " has " +
                                         std::to_string(free_boot / 1024) + " KiB free, the slot needs " +
                                         std::to_string(need / 1024) + " KiB; nothing was changed");
  }
  if (module_bytes > 0) {
    std::error_code ec;
    stdfs::create_directories(ctx_.paths.modules(), ec);
    auto free_root = FLEET_TRY(ctx_.disk.free_bytes(ctx_.paths.modules()));
    if (free_root < module_bytes + module_bytes / 2) {
      return fail(Errc::invalid_input, "the root filesystem has " + std::to_string(free_root / 1024) +
                                           " KiB free, the modules need " + std::to_string(module_bytes / 1024) +
                                           " KiB; nothing was changed");
    }
  }
  if (st_.state == State::installing) {
    // Callers hold the agent's lock (fleet-agent takes it for every lifecycle command), so
    // an install still marked as running was cut off, e.g. by a dropped SSH connection:
    // conclude it as interrupted, then start again.
    reason_ = "interrupted before it finished (its process is gone)";
    FLEET_TRY(fire(Event::install_error));
    reason_.clear();
  }
  if (st_.state != State::idle && st_.state != State::installed) {
    return fail(Errc::invalid_input, std::string("an update is in progress (state ") + state_name(st_.state) + ")");
  }
  bundle_ = bundle_dir;
  manifest_ = manifest;
  signer_ = signer;
  reason_.clear();
  st_.target = Target{slot, manifest.build_key, rollout_id, bench, std::nullopt, ""};
  if (bench) {
    // The committed kernel's figure, measured the way the trial kernel will be, before
    // anything is written: the report then says what the update changed. The last
    // measurement of this kernel, the same way, serves when it is younger than a day.
    const std::string running = ctx_.system.running_release();
    const std::int64_t now = ctx_.system.now_ms();
    // Only the committed kernel is a baseline. The stock kernel's release is not kept (""):
    // it is what runs, unless the last update gave up on a trial kernel without a reboot
    // (a reboot loop), which then still runs.
    const bool on_committed =
        st_.committed.release.empty()
            ? !(st_.last && st_.last->phase == Phase::boot_failed && st_.last->release == running)
            : running == st_.committed.release;
    // How this request would be measured (for a model, a hash of its llama-bench): once.
    const std::string key = on_committed ? spec_key(ctx_.system, *bench) : std::string();
    if (!on_committed) {
      st_.target->baseline_note = "the board runs " + running + ", not its committed kernel " +
                                  (st_.committed.release.empty() ? std::string("(stock)") : st_.committed.release) +
                                  ": nothing to compare with until it reboots";
    } else if (st_.measured && st_.measured->release == running && st_.measured->spec == key &&
               now >= st_.measured->at_ms && now - st_.measured->at_ms < k_baseline_max_age_ms) {
      st_.target->baseline = st_.measured;
    } else if (auto t = ctx_.system.measure(*bench)) {
      st_.target->baseline = measurement_of(*t, running, *bench, key, now);
      st_.measured = st_.target->baseline;  // kept for the next request like this one, for a day
    } else {
      st_.target->baseline_note = "measuring " + running + " at install failed: " + t.error().message;
    }
  }
  st_.note.clear();
  return fire(Event::install);
}

Result<void> Agent::tryboot() {
  FLEET_TRY(load());
  return fire(Event::tryboot);
}

Result<void> Agent::rollback() {
  FLEET_TRY(load());
  if (st_.state != State::idle) {
    return fail(Errc::invalid_input, std::string("an update is in progress (state ") + state_name(st_.state) +
                                         "); rollback works from idle");
  }
  if (!st_.previous) return fail(Errc::invalid_input, "no previous kernel to roll back to");
  st_.target = Target{*st_.previous, "", "rollback", std::nullopt, std::nullopt, ""};
  return fire(Event::rollback);
}

Result<void> Agent::boot_check() {
  FLEET_TRY(load());
  // Nothing to carry on: no update, or one installed and waiting for `tryboot`.
  if (st_.state == State::idle || st_.state == State::installed) return {};
  ++st_.boots_in_state;
  FLEET_TRY(save());
  if (st_.boots_in_state > k_max_boots_in_state) return fire(Event::loop_limit);
  bool on_target = st_.target && ctx_.system.running_release() == st_.target->slot.release;
  return fire(on_target ? Event::booted_target : Event::booted_other);
}

}  // namespace fleet::agent
