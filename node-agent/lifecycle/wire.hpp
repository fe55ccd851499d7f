#pragma once
// The agent's side of the contract with the controller: its state, a verification and a
// measurement as fleet.v1 messages (proto/fleet.proto). Printed only through proto/codec.hpp.
// Pure conversions; state.json stays the agent's private file with its own codec.
#include "node-agent/bench/bench.hpp"
#include "node-agent/lifecycle/state.hpp"
#include "node-agent/verify/verify.hpp"
#include "proto/fleet.pb.h"

namespace fleet::agent {

fleet::v1::AgentState wire_state(State s);
fleet::v1::Phase wire_phase(Phase p);
// The state as `fleet-agent status --json` shows it; the caller adds what the state file does
// not hold (trusted keys, running release, version).
fleet::v1::AgentStatus status_message(const AgentState& s);
fleet::v1::Verification verification_message(const Report& r);
// What a report carries of a measurement (`fleet-agent bench` keeps its own richer JSON).
fleet::v1::Throughput throughput_message(const bench::BenchReport& r);

}  // namespace fleet::agent
