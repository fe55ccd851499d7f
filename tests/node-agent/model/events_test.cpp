// fleet-model's JSON lines: what fleet-model writes, fleetctl reads back as it was, and a line
// that is wrong is refused naming the board, the event and the field.
#include <catch2/catch.hpp>

#include "node-agent/model/events.hpp"

using namespace fleet;
using namespace fleet::model;

namespace {

template <class T>
T round_trip(const T& in) {
  const std::string line = event::to_line(in);
  CHECK(line.find('\n') == std::string::npos);  // one line, whatever the strings hold
  auto back = event::parse_line(line, "board pi-1");
  REQUIRE(back);
  REQUIRE(std::holds_alternative<T>(*back));
  return std::get<T>(*back);
}

std::string error_of(std::string_view line) {
  auto r = event::parse_line(line, "board pi-7");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::parse);
  return r.error().message;
}

}  // namespace

TEST_CASE("fleet-model events: every kind survives its line, 64-bit sizes and odd names included") {
  const auto l = round_trip(event::Listening{46685, "llama 3.2 \"1b\"\n.gguf", 5'000'000'000});
  CHECK(l.port == 46685);
  CHECK(l.name == "llama 3.2 \"1b\"\n.gguf");
  CHECK(l.size == 5'000'000'000);

  const auto p = round_trip(event::Progress{1, 2, 3, 4, 5, 6, 7, 8, {{"10.0.2.2:22801", 0.25}, {"[::1]:6881", 1.0}}});
  CHECK(p.done == 1);
  CHECK(p.total == 2);
  CHECK(p.down_rate == 3);
  CHECK(p.up_rate == 4);
  CHECK(p.uploaded == 5);
  CHECK(p.downloaded == 6);
  CHECK(p.hash_failures == 7);
  CHECK(p.banned == 8);
  REQUIRE(p.peers.size() == 2);
  CHECK(p.peers[0].endpoint == "10.0.2.2:22801");
  CHECK(p.peers[0].progress == 0.25);
  CHECK(p.peers[1].endpoint == "[::1]:6881");

  const auto c = round_trip(event::Complete{"m.gguf", std::string(64, 'a'), "/var/lib/fleet/models/m.gguf", 2, 1, 123});
  CHECK(c.sha256 == std::string(64, 'a'));
  CHECK(c.path == "/var/lib/fleet/models/m.gguf");
  CHECK(c.hash_failures == 2);
  CHECK(c.banned == 1);
  CHECK(c.downloaded == 123);

  const auto i = round_trip(event::Inspect{true, 9'000'000'000, 17});
  CHECK(i.holds);
  CHECK(i.free_bytes == 9'000'000'000);
  CHECK(i.partial_bytes == 17);

  const auto list = round_trip(event::List{{{"a.gguf", 1, "ab", 1700000000000}, {"b.gguf", 2, "cd", 3}}});
  REQUIRE(list.models.size() == 2);
  CHECK(list.models[0].name == "a.gguf");
  CHECK(list.models[0].at_ms == 1700000000000);
  CHECK(list.models[1].sha256 == "cd");
  CHECK(round_trip(event::List{}).models.empty());

  CHECK(round_trip(event::Failure{"no room"}).message == "no room");
  CHECK(round_trip(event::Warning{"bad peer"}).message == "bad peer");
  CHECK(round_trip(event::Stopped{"stdin closed"}).message == "stdin closed");
}

// The names are the wire contract with fleet-models already on boards (an installed package
// of the same version, or a copy): renaming one breaks them, so they are spelled out here.
TEST_CASE("fleet-model events: each kind's line says its name, the one fleetctl matches on") {
  CHECK(event::to_line(event::Listening{}).find(R"("event":"listening")") != std::string::npos);
  CHECK(event::to_line(event::Failure{}).find(R"("event":"error")") != std::string::npos);
  CHECK(std::string(event::name_of(event::Inspect{})) == "inspect");
  CHECK(std::string(event::name_of(event::Stopped{})) == "stopped");
}

TEST_CASE("fleet-model events: a wrong line names the board, the event and the field") {
  CHECK_THAT(error_of("Segmentation fault"), Catch::Contains("board pi-7: fleet-model printed something that is not one of its JSON events: 'Segmentation fault'"));
  CHECK_THAT(error_of("[1,2]"), Catch::Contains("not one of its JSON events"));
  CHECK_THAT(error_of(R"({"port":1})"), Catch::Contains("not one of its JSON events"));
  CHECK_THAT(error_of(R"({"event":7})"), Catch::Contains("not one of its JSON events"));
  CHECK_THAT(error_of(R"({"event":"teleport"})"), Catch::Contains("an event this fleetctl does not know: 'teleport'"));
  CHECK_THAT(error_of(R"({"event":"listening","name":"m","size":3})"),
             Catch::Contains("board pi-7: fleet-model's 'listening' event: port is missing or not a whole number"));
  CHECK_THAT(error_of(R"({"event":"inspect","holds":"yes","free_bytes":1,"partial_bytes":0})"),
             Catch::Contains("'inspect' event: holds is missing or not true or false"));
  CHECK_THAT(error_of(R"({"event":"inspect","holds":false,"free_bytes":1.5,"partial_bytes":0})"),
             Catch::Contains("free_bytes is missing or not a whole number"));
  CHECK_THAT(error_of(R"({"event":"listening","port":99999999999,"name":"m","size":3})"),
             Catch::Contains("port is missing or not a whole number from 1 to 65535"));
  CHECK_THAT(error_of(R"({"event":"listening","port":0,"name":"m","size":3})"),
             Catch::Contains("port is missing or not a whole number from 1 to 65535"));
  CHECK_THAT(error_of(R"({"event":"listening","port":70000,"name":"m","size":3})"), Catch::Contains("from 1 to 65535"));
  CHECK_THAT(error_of(R"({"event":"listening","port":6881,"name":"m","size":-1})"),
             Catch::Contains("size is missing or not a whole number from 0 to"));
  CHECK_THAT(error_of(R"({"event":"listening","port":6881,"name":"m","size":18446744073709551615})"),
             Catch::Contains("size is missing or not a whole number from 0 to"));
  CHECK_THAT(error_of(R"({"event":"inspect","holds":false,"free_bytes":-5,"partial_bytes":0})"),
             Catch::Contains("'inspect' event: free_bytes is missing or not a whole number from 0"));
  CHECK_THAT(error_of(R"({"event":"progress","done":1,"total":2,"down_rate":0,"up_rate":0,"uploaded":0,"downloaded":0,)"
                      R"("hash_failures":0,"banned":0,"peers":[{"endpoint":"a:1","progress":0.5},{"endpoint":"b:2"}]})"),
             Catch::Contains("'progress' event: peers[1].progress is missing or not a number from 0 to 1"));
  CHECK_THAT(error_of(R"({"event":"progress","done":1,"total":2,"down_rate":0,"up_rate":0,"uploaded":0,"downloaded":0,)"
                      R"("hash_failures":0,"banned":0,"peers":[{"endpoint":"a:1","progress":1.5}]})"),
             Catch::Contains("peers[0].progress is missing or not a number from 0 to 1"));
  CHECK_THAT(error_of(R"({"event":"list","models":[3]})"), Catch::Contains("'list' event: models[0] is missing or not an object"));
  CHECK_THAT(error_of(R"({"event":"error"})"), Catch::Contains("'error' event: message is missing or not a string"));
}
