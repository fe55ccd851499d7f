#pragma once
// The one JSON codec for fleet.v1 messages: protobuf's own JSON mapping, with the field names
// as fleet.proto writes them (board_id, not boardId), every field printed (zeros, false and ""
// too: a script sees the whole schema), enums by name, 64-bit integers as strings (as the
// mapping says; numbers are accepted on input). Reading ignores fields it does not know, so a
// controller reads an agent newer than itself (both from this codec on: a fleetctl from before
// it reads 64-bit numbers only as numbers; upgrade fleetctl first, it then replaces the agents). Everything that prints or reads the JSON of an
// AgentStatus, a Verification, a PhaseReport (the agent's outbox), a Throughput or a status
// snapshot goes through here.
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "common/error.hpp"

namespace fleet::wire {

enum class Layout { compact, indented };

Result<std::string> to_json(const google::protobuf::Message& message, Layout layout = Layout::compact);

// `source` names where the text came from (a file, "board pi-03: fleet-agent status --json")
// and starts every error.
Result<void> from_json(std::string_view text, std::string_view source, google::protobuf::Message* out);

template <class M>
Result<M> parse(std::string_view text, std::string_view source) {
  M m;
  FLEET_TRY(from_json(text, source, &m));
  return m;
}

}  // namespace fleet::wire
