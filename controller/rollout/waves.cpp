#include "controller/rollout/waves.hpp"

#include <charconv>
#include <string>

#include "common/text.hpp"

namespace fleet::rollout {
namespace {

Result<SerialStep> parse_step(std::string_view s, std::string_view all) {
  s = text::trim(s);
  SerialStep step;
  if (s.ends_with("%")) {
    step.percent = true;
    s.remove_suffix(1);
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), step.value);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return fail(Errc::invalid_input, "--serial '" + std::string(all) + "': '" + std::string(s) +
                                         "' is not a number of boards or a percentage");
  }
  if (step.value < 1 || (step.percent && step.value > 100)) {
    return fail(Errc::invalid_input, "--serial '" + std::string(all) + "': each step must be at least 1" +
                                         (step.percent ? " and at most 100%" : ""));
  }
  return step;
}

}  // namespace

Result<std::vector<SerialStep>> parse_serial(std::string_view text) {
  std::vector<SerialStep> steps;
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    steps.push_back(FLEET_TRY(parse_step(rest.substr(0, comma), text)));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return steps;
}

std::vector<std::size_t> plan_waves(std::size_t boards, const std::vector<SerialStep>& serial) {
  std::vector<std::size_t> waves;
  std::size_t left = boards, i = 0;
  while (left > 0) {
    const SerialStep& step = serial.empty() ? SerialStep{true, 100} : serial[std::min(i, serial.size() - 1)];
    // A percentage of all boards, rounded down as Ansible does, but never below one board.
    std::size_t size = step.percent ? boards * static_cast<std::size_t>(step.value) / 100
                                    : static_cast<std::size_t>(step.value);
    size = std::max<std::size_t>(1, std::min(size, left));
    waves.push_back(size);
    left -= size;
    ++i;
  }
  return waves;
}

Result<MaxFail> parse_max_fail(std::string_view text) {
  std::string_view s = text::trim(text);
  MaxFail m;
  m.percent = s.ends_with("%");
  if (m.percent) s.remove_suffix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), m.value);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || m.value < 0 || (m.percent && m.value > 100)) {
    return fail(Errc::invalid_input, "--max-fail '" + std::string(text) +
                                         "' must be a count of boards (2) or a percentage from 0% to 100% (10%)");
  }
  return m;
}

bool exceeds(const MaxFail& m, std::size_t failed, std::size_t wave_size) {
  if (failed == 0 || wave_size == 0) return false;
  if (!m.percent) return failed > static_cast<std::size_t>(m.value);
  if (m.value >= 100) return false;
  // failed / wave_size > value / 100, in integers.
  return failed * 100 > static_cast<std::size_t>(m.value) * wave_size;
}

}  // namespace fleet::rollout
