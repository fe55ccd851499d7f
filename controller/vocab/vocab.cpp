#include "controller/vocab/vocab.hpp"

#include <array>

#include <utility>

namespace fleet::vocab {
namespace {

template <class E>
using Names = std::pair<E, const char*>;

constexpr Names<Step> k_steps[] = {
    {Step::pending, "pending"},         {Step::connect, "connect"},
    {Step::inspect, "inspect"},         {Step::push_bundle, "push_bundle"},
    {Step::staged, "staged"},           {Step::push_agent, "push_agent"},
    {Step::install, "install"},         {Step::reboot, "reboot"},
    {Step::request_rollback, "request_rollback"},
    {Step::await_boot, "await_boot"},   {Step::await_outcome, "await_outcome"},
    {Step::done, "done"},
};
// "" is how a finished row without an outcome was stored before outcomes were typed.
constexpr Names<Outcome> k_outcomes[] = {
    {Outcome::none, ""},
    {Outcome::committed, "committed"},
    {Outcome::skipped, "skipped"},
    {Outcome::rolled_back, "rolled_back"},
    {Outcome::boot_failed, "boot_failed"},
    {Outcome::install_failed, "install_failed"},
    {Outcome::unreachable, "unreachable"},
    {Outcome::auth_refused, "auth_refused"},
    {Outcome::host_key, "host_key"},
    {Outcome::timeout, "timeout"},
    {Outcome::failed, "failed"},
    {Outcome::not_started, "not_started"},
};
constexpr Names<RolloutState> k_rollout_states[] = {
    {RolloutState::running, "running"},
    {RolloutState::stopped, "stopped"},
    {RolloutState::done, "done"},
    {RolloutState::dry_run, "dry-run"},
};

template <class E, std::size_t N>
const char* name_in(const Names<E> (&table)[N], E v) {
  for (const auto& [e, n] : table)
    if (e == v) return n;
  return "?";
}
template <class E, std::size_t N>
std::optional<E> find_in(const Names<E> (&table)[N], std::string_view name) {
  for (const auto& [e, n] : table)
    if (name == n) return e;
  return std::nullopt;
}

}  // namespace

template <class E, std::size_t N>
std::span<const E> values_of(const Names<E> (&table)[N]) {
  static const auto values = [&] {
    std::array<E, N> v{};
    for (std::size_t i = 0; i < N; ++i) v[i] = table[i].first;
    return v;
  }();
  return values;
}

std::span<const Step> all_steps() { return values_of(k_steps); }
std::span<const Outcome> all_outcomes() { return values_of(k_outcomes); }
std::span<const RolloutState> all_rollout_states() { return values_of(k_rollout_states); }

const char* name(Step s) { return name_in(k_steps, s); }
const char* name(Outcome o) { return name_in(k_outcomes, o); }
const char* name(RolloutState s) { return name_in(k_rollout_states, s); }
std::optional<Step> step_from_name(std::string_view n) { return find_in(k_steps, n); }
std::optional<Outcome> outcome_from_name(std::string_view n) { return find_in(k_outcomes, n); }
std::optional<RolloutState> rollout_state_from_name(std::string_view n) { return find_in(k_rollout_states, n); }

}  // namespace fleet::vocab
