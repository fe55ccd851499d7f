#include "common/contract.hpp"

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
      if (!v.is_number_integer() || v.get<long>() <= 0) return bad(key, "a positive integer (bytes)");
      c.page_size = v.get<long>();
    } else if (key == "thp") {
      if (!v.is_string() || !one_of(v.get<std::string>(), k_thp_modes)) return bad(key, "always, madvise or never");
      c.thp = v.get<std::string>();
    } else if (key == "numa_nodes") {
      if (!v.is_number_integer() || v.get<int>() < 1) return bad(key, "an integer >= 1");
      c.numa_nodes = v.get<int>();
    } else if (key == "numa_nodes_min") {
      if (!v.is_number_integer() || v.get<int>() < 1) return bad(key, "an integer >= 1");
      c.numa_nodes_min = v.get<int>();
    } else if (key == "hz") {
      if (!v.is_number_integer() || v.get<int>() <= 0) return bad(key, "a positive integer");
      c.hz = v.get<int>();
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
  if (c.numa_nodes && c.numa_nodes_min) {
    return fail(Errc::invalid_input, where + ": give numa_nodes or numa_nodes_min, not both");
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
  if (c.hz) j["hz"] = *c.hz;
  if (c.tick) j["tick"] = *c.tick;
  if (c.headless) j["headless"] = *c.headless;
  return j.dump(2) + "\n";
}

}  // namespace fleet
