#pragma once
// Waves of a rollout, with Ansible's semantics (shared/reference/anchors.md): `serial` is a
// number, a percentage or a list of both ("1,5,25%"); the last step repeats for the rest;
// every wave has at least one board. `max-fail` is checked per wave and must be exceeded,
// not equalled; 100% never stops a rollout (Ansible stops a wave where all fail even at
// 100%: ansible#76915). Pure.
#include <cstddef>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::rollout {

struct SerialStep {
  bool percent = false;
  int value = 0;  // boards, or percent of all boards
};

Result<std::vector<SerialStep>> parse_serial(std::string_view text);

// Sizes of the waves for `boards` boards (they sum to `boards`).
std::vector<std::size_t> plan_waves(std::size_t boards, const std::vector<SerialStep>& serial);

struct MaxFail {
  bool percent = true;
  int value = 0;  // failures tolerated per wave: a count, or a percentage of the wave
};
Result<MaxFail> parse_max_fail(std::string_view text);

// Does this wave's failure count stop the rollout?
bool exceeds(const MaxFail& max_fail, std::size_t failed, std::size_t wave_size);

}  // namespace fleet::rollout
