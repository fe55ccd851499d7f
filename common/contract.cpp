#include "common/contract.hpp"

#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

namespace fleet {
namespace {

using nlohmann::json;

const char* const k_thp_modes[] = {"always", "madvise", "never"};
const char* const k_tick_modes[] = {"HZ_PERIODIC", "NO_HZ_IDLE", "NO_HZ_FULL"};

template <class T, size_t N>
bool one_of(const std::string& v, const T (&list)[N]) {
  for (const auto* item : list)
    if (v == item) return true;
  return false;
}

// The value of an integer field if it fits T. nlohmann's get<int>() wraps: "hz": 4294967396
// would be read as 100 (found by tests/fuzz/contract_fuzz).
template <class T>
std::optional<T> integer(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (std::in_range<T>(u)) return T(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (std::in_range<T>(i)) return T(i);
  }
  return std::nullopt;
}

}  // namespace

Result<Contract> parse_contract(std::string_view json_text, std::string_view source) {
  const std::string where(source);
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::parse, where + ": not valid JSON");
  if (!j.is_object()) return fail(Errc::parse, where + ": a contract is a JSON object");
  Contract c;
  auto bad = [&](const std::string& key, const std::string& want) {
    return fail(Errc::invalid_input, where + ": field '" + key + "' must be " + want);
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "kernel_release") {
      if (!v.is_string() || v.get<std::string>().empty()) return bad(key, "a non-empty string");
      c.kernel_release = v.get<std::string>();
    } else if (key == "page_size") {
      c.page_size = integer<long>(v);
      if (!c.page_size || *c.page_size <= 0) return bad(key, "a positive integer (bytes)");
    } else if (key == "thp") {
      if (!v.is_string() || !one_of(v.get<std::string>(), k_thp_modes)) return bad(key, "always, madvise or never");
      c.thp = v.get<std::string>();
    } else if (key == "numa_nodes") {
      c.numa_nodes = integer<int>(v);
      if (!c.numa_nodes || *c.numa_nodes < 1) return bad(key, "an integer >= 1");
    } else if (key == "numa_nodes_min") {
      c.numa_nodes_min = integer<int>(v);
      if (!c.numa_nodes_min || *c.numa_nodes_min < 1) return bad(key, "an integer >= 1");
    } else if (key == "numa_emulation") {
      if (!v.is_boolean()) return bad(key, "true or false");
      c.numa_emulation = v.get<bool>();
    } else if (key == "hz") {
      c.hz = integer<int>(v);
      if (!c.hz || *c.hz <= 0) return bad(key, "a positive integer");
    } else if (key == "tick") {
      if (!v.is_string() || !one_of(v.get<std::string>(), k_tick_modes)) {
        return bad(key, "HZ_PERIODIC, NO_HZ_IDLE or NO_HZ_FULL");
      }
      c.tick = v.get<std::string>();
    } else if (key == "headless") {
      if (!v.is_boolean()) return bad(key, "true or false");
      c.headless = v.get<bool>();
    } else {
      return fail(Errc::invalid_input,
                  where + ": unknown contract property '" + key + "' (is this agent older than the bundle?)");
    }
  }
  if ((c.numa_nodes ? 1 : 0) + (c.numa_nodes_min ? 1 : 0) + (c.numa_emulation.value_or(false) ? 1 : 0) > 1) {
    return fail(Errc::invalid_input, where + ": give one of numa_nodes, numa_nodes_min or numa_emulation");
  }
  return c;
}

std::string contract_to_json(const Contract& c) {
  json j = json::object();
  if (c.kernel_release) j["kernel_release"] = *c.kernel_release;
  if (c.page_size) j["page_size"] = *c.page_size;
  if (c.thp) j["thp"] = *c.thp;
  if (c.numa_nodes) j["numa_nodes"] = *c.numa_nodes;
  if (c.numa_nodes_min) j["numa_nodes_min"] = *c.numa_nodes_min;
  if (c.numa_emulation) j["numa_emulation"] = *c.numa_emulation;
  if (c.hz) j["hz"] = *c.hz;
  if (c.tick) j["tick"] = *c.tick;
  if (c.headless) j["headless"] = *c.headless;
  // A string from a profile may hold bytes that are not UTF-8 (tests/fuzz/profile_fuzz):
  // written as U+FFFD, for parse_contract to refuse by name, instead of throwing.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace fleet
