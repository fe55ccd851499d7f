#include "node-agent/lifecycle/state.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "common/bundle.hpp"

namespace fleet::agent {
namespace {

using nlohmann::json;

constexpr std::pair<State, const char*> k_states[] = {
    {State::idle, "idle"},           {State::installing, "installing"},       {State::installed, "installed"},
    {State::tryboot, "tryboot"},     {State::verifying, "verifying"},         {State::committing, "committing"},
    {State::verify_failed, "verify_failed"}, {State::rolling_back, "rolling_back"},
};

constexpr std::pair<Phase, const char*> k_phases[] = {
    {Phase::installed, "INSTALLED"},         {Phase::tryboot, "TRYBOOT"},
    {Phase::committed, "COMMITTED"},         {Phase::verify_failed, "VERIFY_FAILED"},
    {Phase::rolled_back, "ROLLED_BACK"},     {Phase::boot_failed, "BOOT_FAILED"},
    {Phase::install_failed, "INSTALL_FAILED"},
};

json slot_json(const Slot& s) { return {{"name", s.name}, {"release", s.release}}; }

enum class SlotKind { any_folder, made_by_agent };

// A state file is outside input too (a bad disk, an older agent, a hand edit): its names
// become paths that boot-check removes, so they are checked as a manifest's are.
Result<Slot> slot_from(const json& j, const std::string& where, SlotKind kind) {
  if (!j.is_object() || !j.contains("name") || !j.contains("release") || !j["name"].is_string() ||
      !j["release"].is_string()) {
    return fail(Errc::parse, where + ": a slot needs name and release strings");
  }
  Slot s{j["name"].get<std::string>(), j["release"].get<std::string>()};
  if (kind == SlotKind::made_by_agent ? !is_slot_name(s.name) : !is_slot_folder(s.name)) {
    return fail(Errc::parse, where + ": slot name '" + s.name + "' is not a slot folder of the boot partition");
  }
  // The stock kernel's release may be unknown (""), never a path.
  if (!s.release.empty() && !bundle::is_kernel_release(s.release)) {
    return fail(Errc::parse, where + ": release '" + s.release + "' is not a kernel release");
  }
  return s;
}

}  // namespace

bool is_slot_name(std::string_view name) {
  constexpr std::string_view prefix = "fleet-";
  if (name.size() != prefix.size() + 12 || !name.starts_with(prefix)) return false;
  for (char c : name.substr(prefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_slot_folder(std::string_view name) {
  // A user's own prefix may be nested (os_prefix=kernels/test/): read from, never removed.
  return name.empty() || is_slot_name(name) || bundle::bundle_path_problem(name).empty();
}

const char* state_name(State s) {
  for (const auto& [v, n] : k_states)
    if (v == s) return n;
  return "?";
}

std::optional<State> state_from_name(std::string_view name) {
  for (const auto& [v, n] : k_states)
    if (name == n) return v;
  return std::nullopt;
}

const char* phase_name(Phase p) {
  for (const auto& [v, n] : k_phases)
    if (v == p) return n;
  return "?";
}

std::optional<Phase> phase_from_name(std::string_view name) {
  for (const auto& [v, n] : k_phases)
    if (name == n) return v;
  return std::nullopt;
}

std::string bench_key(const BenchSpec& b) {
  const std::string threads = b.threads > 0 ? std::to_string(b.threads) + " threads" : "all threads";
  return b.model.empty() ? "probe " + b.shape + ", " + threads : "model " + b.model + ", " + threads;
}

namespace {

json measurement_json(const Measurement& m) {
  return {{"release", m.release}, {"key", m.key},       {"tokens_per_s", m.tokens_per_s}, {"spread", m.spread},
          {"tokens", m.tokens},   {"at_ms", m.at_ms},   {"cut_short", m.cut_short}, {"spec", m.spec}};
}

// A kept measurement, checked where it is read: a release that is one, a figure above 0.
std::optional<Measurement> measurement_from(const json& j) {
  try {
    if (!j.is_object() || !j.at("tokens_per_s").is_number() || !j.value("spread", json(0.0)).is_number()) return {};
    Measurement m{j.at("release").get<std::string>(), j.at("key").get<std::string>(), j.at("tokens_per_s").get<double>(),
                  j.value("spread", 0.0), j.value("tokens", 0), j.value("at_ms", std::int64_t{0}),
                  j.value("cut_short", false), j.value("spec", std::string())};
    if (!bundle::is_kernel_release(m.release) || m.key.empty() || m.key.size() > 512 || !std::isfinite(m.tokens_per_s) ||
        m.tokens_per_s <= 0 || !std::isfinite(m.spread) || m.spread < 0 || m.tokens < 0) {
      return {};
    }
    return m;
  } catch (const json::exception&) {
    return {};
  }
}

}  // namespace

std::string state_to_json(const AgentState& s) {
  json j;
  j["state"] = state_name(s.state);
  j["committed"] = slot_json(s.committed);
  if (s.previous) j["previous"] = slot_json(*s.previous);
  if (s.target) {
    j["target"] = {{"slot", slot_json(s.target->slot)}, {"build_key", s.target->build_key},
                   {"rollout_id", s.target->rollout_id}};
    if (const auto& b = s.target->bench) {
      j["target"]["bench"] = {{"shape", b->shape}, {"model", b->model}, {"threads", b->threads},
                              {"min_tokens_per_s", b->min_tokens_per_s}, {"max_seconds", b->max_seconds},
                              {"max_regression", b->max_regression}};
    }
    if (s.target->baseline) j["target"]["baseline"] = measurement_json(*s.target->baseline);
    if (!s.target->baseline_note.empty()) j["target"]["baseline_note"] = s.target->baseline_note;
  }
  j["boots_in_state"] = s.boots_in_state;
  if (!s.note.empty()) j["note"] = s.note;
  if (s.last) {
    j["last"] = {{"phase", phase_name(s.last->phase)}, {"release", s.last->release},
                 {"message", s.last->message}, {"at_ms", s.last->at_ms}};
  }
  j["sequence"] = s.sequence;
  if (s.measured) j["measured"] = measurement_json(*s.measured);
  return j.dump(2) + "\n";
}

Result<AgentState> parse_state(std::string_view text, std::string_view source) {
  const std::string where(source);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::parse, where + ": not a JSON object");
  AgentState s;
  try {
    auto st = state_from_name(j.at("state").get<std::string>());
    if (!st) return fail(Errc::parse, where + ": unknown state '" + j.at("state").get<std::string>() + "'");
    s.state = *st;
    s.committed = FLEET_TRY(slot_from(j.at("committed"), where + ": committed", SlotKind::any_folder));
    if (j.contains("previous")) s.previous = FLEET_TRY(slot_from(j["previous"], where + ": previous", SlotKind::any_folder));
    if (j.contains("target")) {
      const json& t = j["target"];
      // A rollback's target is the previous slot (any folder, no build key); an update's is
      // a slot the agent made, of a valid build.
      const std::string key = t.at("build_key").get<std::string>();
      s.target = Target{FLEET_TRY(slot_from(t.at("slot"), where + ": target",
                                            key.empty() ? SlotKind::any_folder : SlotKind::made_by_agent)),
                        key, t.at("rollout_id").get<std::string>(), std::nullopt, std::nullopt, ""};
      if (!key.empty() && !bundle::is_build_key(key)) {
        return fail(Errc::parse, where + ": target build_key '" + key + "' is not 64 lowercase hex digits");
      }
      if (!key.empty() && s.target->slot.release.empty()) return fail(Errc::parse, where + ": target has no release");
      if (t.contains("bench")) {
        const json& b = t["bench"];
        s.target->bench = BenchSpec{b.at("shape").get<std::string>(), b.value("model", std::string()),
                                    b.value("threads", 0), b.value("min_tokens_per_s", 0.0), b.value("max_seconds", 0),
                                    b.value("max_regression", 0.0)};
        const double mr = s.target->bench->max_regression;
        if (!std::isfinite(mr) || mr < 0 || mr >= 1) {
          return fail(Errc::parse, where + ": target bench max_regression is not a fraction from 0 to 1");
        }
        if (s.target->bench->max_seconds < 0 || s.target->bench->max_seconds > 3600) {
          return fail(Errc::parse, where + ": target bench max_seconds " + std::to_string(s.target->bench->max_seconds) +
                                       " is not 0 to 3600");
        }
      }
    }
    // Measurements are a cache and a comparison, never worth refusing the state for: one that
    // does not read back is dropped, said in the baseline's note.
    if (s.target && s.target->bench) {
      s.target->baseline_note = j["target"].value("baseline_note", std::string());
      if (j["target"].contains("baseline")) {
        s.target->baseline = measurement_from(j["target"]["baseline"]);
        if (!s.target->baseline) s.target->baseline_note = "the saved baseline did not read back";
      } else if (s.target->baseline_note.empty()) {
        s.target->baseline_note = "installed by an agent that did not measure the committed kernel";
      }
    }
    if (j.contains("measured")) s.measured = measurement_from(j["measured"]);
    s.boots_in_state = j.value("boots_in_state", 0);
    s.note = j.value("note", std::string());
    if (j.contains("last")) {
      const json& l = j["last"];
      auto ph = phase_from_name(l.at("phase").get<std::string>());
      if (!ph) return fail(Errc::parse, where + ": unknown phase '" + l.at("phase").get<std::string>() + "'");
      s.last = Outcome{*ph, l.at("release").get<std::string>(), l.at("message").get<std::string>(),
                       l.at("at_ms").get<std::int64_t>()};
    }
    s.sequence = j.value("sequence", std::uint64_t{0});
  } catch (const json::exception& e) {
    return fail(Errc::parse, where + ": " + e.what());
  }
  return s;
}

}  // namespace fleet::agent
