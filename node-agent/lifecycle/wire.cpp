#include "node-agent/lifecycle/wire.hpp"

#include <algorithm>
#include <cmath>

namespace fleet::agent {
namespace {

void set_slot(const Slot& s, fleet::v1::Slot* out) {
  out->set_name(s.name);
  out->set_release(s.release);
}

}  // namespace

fleet::v1::AgentState wire_state(State s) {
  switch (s) {
    case State::idle: return fleet::v1::AGENT_IDLE;
    case State::installing: return fleet::v1::AGENT_INSTALLING;
    case State::installed: return fleet::v1::AGENT_INSTALLED;
    case State::tryboot: return fleet::v1::AGENT_TRYBOOT;
    case State::verifying: return fleet::v1::AGENT_VERIFYING;
    case State::committing: return fleet::v1::AGENT_COMMITTING;
    case State::verify_failed: return fleet::v1::AGENT_VERIFY_FAILED;
    case State::rolling_back: return fleet::v1::AGENT_ROLLING_BACK;
  }
  return fleet::v1::AGENT_STATE_UNSPECIFIED;
}

fleet::v1::Phase wire_phase(Phase p) {
  switch (p) {
    case Phase::installed: return fleet::v1::INSTALLED;
    case Phase::tryboot: return fleet::v1::TRYBOOT;
    case Phase::committed: return fleet::v1::COMMITTED;
    case Phase::verify_failed: return fleet::v1::VERIFY_FAILED;
    case Phase::rolled_back: return fleet::v1::ROLLED_BACK;
    case Phase::boot_failed: return fleet::v1::BOOT_FAILED;
    case Phase::install_failed: return fleet::v1::INSTALL_FAILED;
  }
  return fleet::v1::PHASE_UNSPECIFIED;
}

fleet::v1::AgentStatus status_message(const AgentState& s) {
  fleet::v1::AgentStatus m;
  m.set_state(wire_state(s.state));
  set_slot(s.committed, m.mutable_committed());
  if (s.previous) set_slot(*s.previous, m.mutable_previous());
  if (s.target) {
    auto* t = m.mutable_target();
    set_slot(s.target->slot, t->mutable_slot());
    t->set_build_key(s.target->build_key);
    t->set_rollout_id(s.target->rollout_id);
    if (const auto& b = s.target->bench) {
      auto* w = t->mutable_bench();
      w->set_shape(b->shape);
      w->set_model(b->model);
      w->set_threads(b->threads);
      w->set_min_tokens_per_s(b->min_tokens_per_s);
      w->set_max_seconds(b->max_seconds);
      w->set_max_regression(b->max_regression);
    }
  }
  m.set_boots_in_state(s.boots_in_state);
  m.set_note(s.note);
  if (s.last) {
    auto* l = m.mutable_last();
    l->set_phase(wire_phase(s.last->phase));
    l->set_release(s.last->release);
    l->set_message(s.last->message);
    l->set_at_ms(s.last->at_ms);
  }
  m.set_sequence(s.sequence);
  return m;
}

fleet::v1::Verification verification_message(const Report& r) {
  fleet::v1::Verification v;
  v.set_ok(r.ok());
  for (const auto& c : r.checks) {
    auto* k = v.add_checks();
    k->set_property(c.property);
    k->set_expected(c.expected);
    k->set_actual(c.actual);
    k->set_pass(c.pass);
    k->set_detail(c.detail);
    k->set_warning(c.warning);
  }
  if (r.memory) {
    v.mutable_memory()->set_mem_total_kb(r.memory->mem_total_kb);
    v.mutable_memory()->set_mem_available_kb(r.memory->mem_available_kb);
  } else {
    v.mutable_memory()->set_error(r.memory_error);
  }
  return v;
}

fleet::v1::Throughput throughput_message(const bench::BenchReport& r) {
  fleet::v1::Throughput t;
  if (r.probe) {
    t.set_shape(r.probe->shape.name);
    t.set_tokens_per_s(r.probe->tokens_per_s);
    t.set_effective_gbps(r.probe->effective_gbps);
    t.set_threads(static_cast<std::uint32_t>(std::max(0, r.probe->threads)));
    t.set_dot_path(r.probe->dot_path);
    t.set_layout(r.probe->layout);
    t.set_numa_nodes(static_cast<std::uint32_t>(std::max(0, r.probe->numa_nodes)));
    t.set_bytes_per_token(r.probe->bytes_per_token);
    t.set_tokens_timed(static_cast<std::uint32_t>(std::max(0, r.probe->tokens)));
    t.set_seconds_timed(r.probe->seconds_timed);
    t.set_spread(r.probe->spread);
    t.set_cut_short(r.probe->cut_short);
    t.set_hugepage_advice(std::string(bench::huge_name(r.probe->huge)));
    t.set_weights_huge_fraction(r.probe->huge_fraction);
  }
  if (r.bandwidth) {
    // The read figure on the most threads measured (all CPUs, or --threads).
    int most = 0;
    for (const auto& x : r.bandwidth->results) {
      if (x.kernel == bench::Kernel::read) most = std::max(most, x.threads);
    }
    t.set_read_gbps(r.bandwidth->gbps(bench::Kernel::read, most, bench::Huge::on));
    t.set_read_gbps_nohuge(r.bandwidth->gbps(bench::Kernel::read, most, bench::Huge::off));
  }
  if (r.llama && r.llama->prompt) {
    t.set_llama_pp_ts(r.llama->prompt->avg_ts);
    t.set_llama_pp_stddev(r.llama->prompt->stddev_ts);
  }
  if (r.llama && r.llama->generation) {
    t.set_llama_tg_ts(r.llama->generation->avg_ts);
    t.set_llama_tg_stddev(r.llama->generation->stddev_ts);
  }
  if (r.model) t.set_model(r.model->path.filename().string());
  t.set_note(r.llama_note);
  const auto h = bench::as_reported(r.health);
  if (h.temperature_c) t.set_temperature_c(*h.temperature_c);
  if (h.undervoltage) t.set_undervoltage(*h.undervoltage);
  if (h.cpu_mhz) t.set_cpu_mhz(static_cast<std::uint32_t>(std::max(0, *h.cpu_mhz)));
  if (h.cpu_max_mhz) t.set_cpu_max_mhz(static_cast<std::uint32_t>(std::max(0, *h.cpu_max_mhz)));
  return t;
}

}  // namespace fleet::agent
