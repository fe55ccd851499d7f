#include "node-agent/model/events.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <nlohmann/json.hpp>

namespace fleet::model::event {

using nlohmann::json;

namespace {

// The "event" of each alternative, in the variant's order.
constexpr std::array<const char*, std::variant_size_v<Event>> k_names = {
    "listening", "progress", "complete", "inspect", "list", "error", "warning", "stopped"};
// An alternative added to Event without its name here would leave a null: refused at build.
static_assert(std::ranges::all_of(k_names, [](const char* n) { return n != nullptr; }),
              "every alternative of event::Event needs its name in k_names");

template <std::size_t I = 0>
Event empty_of(std::size_t index) {
  if constexpr (I < std::variant_size_v<Event>) {
    if (index == I) return Event{std::in_place_index<I>};
    return empty_of<I + 1>(index);
  } else {
    return Event{};
  }
}

// Reads typed fields of one object; the first wrong one is kept and named.
class Reader {
 public:
  Reader(const json& j, std::string_view who, std::string_view event) : j_(j), who_(who), event_(event) {}

  void text(const char* field, std::string& out) {
    if (const json* v = find(field, json::value_t::string)) out = v->get<std::string>();
  }
  // Every count, size and rate here is 0 or more; a port is 1 to 65535.
  template <class Int>
  void whole(const char* field, Int& out, std::int64_t min = 0,
             std::int64_t max = std::numeric_limits<Int>::max()) {
    const json* v = find_number(field, true, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    if (!v) return;
    // A number beyond int64 (an unsigned one) is out of range as well.
    bool fits = false;
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      fits = u <= static_cast<std::uint64_t>(max) && static_cast<std::int64_t>(u) >= min;
    } else {
      const auto n = v->get<std::int64_t>();
      fits = n >= min && n <= max;
    }
    if (!fits) {
      bad(field, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
      return;
    }
    out = static_cast<Int>(v->get<std::int64_t>());
  }
  void share(const char* field, double& out) {  // 0 .. 1
    const json* v = find_number(field, false, "a number from 0 to 1");
    if (!v) return;
    const double x = v->get<double>();
    if (!(x >= 0 && x <= 1)) {
      bad(field, "a number from 0 to 1");
      return;
    }
    out = x;
  }
  void flag(const char* field, bool& out) {
    if (const json* v = find(field, json::value_t::boolean)) out = v->get<bool>();
  }
  // An array of objects, each read by `each`.
  template <class F>
  void objects(const char* field, F&& each) {
    const json* v = find(field, json::value_t::array);
    if (!v) return;
    for (std::size_t i = 0; i < v->size() && !error_; ++i) {
      const json& item = (*v)[i];
      const std::string where = std::string(field) + "[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        bad(where, "an object");
        return;
      }
      Reader inner(item, who_, event_);
      inner.prefix_ = prefix_ + where + ".";
      each(inner);
      if (inner.error_) error_ = inner.error_;
    }
  }
  Result<void> result() const {
    if (error_) return std::unexpected(*error_);
    return {};
  }

 private:
  const json* find(const char* field, json::value_t type) {
    if (error_) return nullptr;
    auto it = j_.find(field);
    if (it == j_.end() || it->type() != type) {
      bad(field, type == json::value_t::string    ? "a string"
                 : type == json::value_t::boolean ? "true or false"
                                                  : "an array");
      return nullptr;
    }
    return &*it;
  }
  const json* find_number(const char* field, bool integer, const std::string& want) {
    if (error_) return nullptr;
    auto it = j_.find(field);
    if (it == j_.end() || !(integer ? it->is_number_integer() : it->is_number())) {
      bad(field, want);
      return nullptr;
    }
    return &*it;
  }
  void bad(const std::string& field, const std::string& want) {
    if (error_) return;
    error_ = Error{Errc::parse, std::string(who_) + ": fleet-model's '" + std::string(event_) + "' event: " + prefix_ +
                                    field + " is missing or not " + want};
  }

  const json& j_;
  std::string_view who_;
  std::string_view event_;
  std::string prefix_;
  std::optional<Error> error_;
};

void read(Reader& r, Listening& e) {
  r.whole("port", e.port, 1, 65535);
  r.text("name", e.name);
  r.whole("size", e.size);
}
void read(Reader& r, Progress& e) {
  r.whole("done", e.done);
  r.whole("total", e.total);
  r.whole("down_rate", e.down_rate);
  r.whole("up_rate", e.up_rate);
  r.whole("uploaded", e.uploaded);
  r.whole("downloaded", e.downloaded);
  r.whole("hash_failures", e.hash_failures);
  r.whole("banned", e.banned);
  r.objects("peers", [&](Reader& p) {
    PeerProgress v;
    p.text("endpoint", v.endpoint);
    p.share("progress", v.progress);
    e.peers.push_back(std::move(v));
  });
}
void read(Reader& r, Complete& e) {
  r.text("name", e.name);
  r.text("sha256", e.sha256);
  r.text("path", e.path);
  r.whole("hash_failures", e.hash_failures);
  r.whole("banned", e.banned);
  r.whole("downloaded", e.downloaded);
}
void read(Reader& r, Inspect& e) {
  r.flag("holds", e.holds);
  r.whole("free_bytes", e.free_bytes);
  r.whole("partial_bytes", e.partial_bytes);
}
void read(Reader& r, List& e) {
  r.objects("models", [&](Reader& m) {
    Held h;
    m.text("name", h.name);
    m.whole("size", h.size);
    m.text("sha256", h.sha256);
    m.whole("at_ms", h.at_ms);
    e.models.push_back(std::move(h));
  });
}
void read(Reader& r, Failure& e) { r.text("message", e.message); }
void read(Reader& r, Warning& e) { r.text("message", e.message); }
void read(Reader& r, Stopped& e) { r.text("message", e.message); }

json write(const Listening& e) { return {{"port", e.port}, {"name", e.name}, {"size", e.size}}; }
json write(const Progress& e) {
  json peers = json::array();
  for (const auto& p : e.peers) peers.push_back({{"endpoint", p.endpoint}, {"progress", p.progress}});
  return {{"done", e.done},         {"total", e.total},           {"down_rate", e.down_rate},
          {"up_rate", e.up_rate},   {"uploaded", e.uploaded},     {"downloaded", e.downloaded},
          {"hash_failures", e.hash_failures}, {"banned", e.banned}, {"peers", peers}};
}
json write(const Complete& e) {
  return {{"name", e.name},           {"sha256", e.sha256}, {"path", e.path},
          {"hash_failures", e.hash_failures}, {"banned", e.banned}, {"downloaded", e.downloaded}};
}
json write(const Inspect& e) {
  return {{"holds", e.holds}, {"free_bytes", e.free_bytes}, {"partial_bytes", e.partial_bytes}};
}
json write(const List& e) {
  json models = json::array();
  for (const auto& h : e.models) models.push_back({{"name", h.name}, {"size", h.size}, {"sha256", h.sha256}, {"at_ms", h.at_ms}});
  return {{"models", models}};
}
json write(const Failure& e) { return {{"message", e.message}}; }
json write(const Warning& e) { return {{"message", e.message}}; }
json write(const Stopped& e) { return {{"message", e.message}}; }

}  // namespace

const char* name_of(const Event& e) { return k_names[e.index()]; }

std::string to_line(const Event& e) {
  json j = std::visit([](const auto& v) { return write(v); }, e);
  j["event"] = name_of(e);
  return j.dump();
}

Result<Event> parse_line(std::string_view line, std::string_view who) {
  const json j = json::parse(line, nullptr, false);
  auto not_event = [&] {
    return fail(Errc::parse, std::string(who) + ": fleet-model printed something that is not one of its JSON events: '" +
                                 std::string(line.substr(0, 200)) + "'");
  };
  if (j.is_discarded() || !j.is_object()) return not_event();
  auto kind = j.find("event");
  if (kind == j.end() || !kind->is_string()) return not_event();
  const std::string name = kind->get<std::string>();
  for (std::size_t i = 0; i < k_names.size(); ++i) {
    if (name != k_names[i]) continue;
    Event e = empty_of(i);
    Reader r(j, who, name);
    std::visit([&](auto& v) { read(r, v); }, e);
    FLEET_TRY(r.result());
    return e;
  }
  return fail(Errc::parse, std::string(who) + ": fleet-model printed an event this fleetctl does not know: '" + name +
                               "' (is the board's fleet-model of another version?)");
}

}  // namespace fleet::model::event
