#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "controller/store/store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

TEST_CASE("rollouts, boards and reports survive closing and reopening the file") {
  test::TempDir dir;
  {
    auto st = store::Store::open(dir / "fleet.db");
    REQUIRE(st);
    store::RolloutRow r;
    r.id = "r1";
    r.kernel_release = "6.1-new";
    r.state = vocab::RolloutState::running;
    r.trust_key = "/keys/release.pub";
    r.signed_by = "e78c5f502036d9ce";
    REQUIRE((*st)->put_rollout(r));
    store::BoardRow b;
    b.rollout_id = "r1";
    b.board = "pi-1";
    b.step = vocab::Step::await_outcome;
    b.updated_ms = 10;
    REQUIRE((*st)->put_board(b));
    REQUIRE((*st)->add_report({"pi-1", "r1", 3, "COMMITTED", "6.1-new", "", "[]", 11, R"({"tokens_per_s":4.5})"}));
    // A replayed sequence is ignored, not duplicated.
    REQUIRE((*st)->add_report({"pi-1", "r1", 3, "COMMITTED", "6.1-new", "again", "[]", 12, ""}));
  }
  auto st = store::Store::open(dir / "fleet.db");
  REQUIRE(st);
  auto r = (*st)->rollout("r1");
  REQUIRE(r);
  REQUIRE(*r);
  CHECK((*r)->state == vocab::RolloutState::running);
  CHECK((*r)->trust_key == "/keys/release.pub");
  CHECK((*r)->signed_by == "e78c5f502036d9ce");
  auto boards = (*st)->boards("r1");
  REQUIRE(boards);
  REQUIRE(boards->size() == 1);
  CHECK((*boards)[0].step == vocab::Step::await_outcome);
  auto reports = (*st)->reports("pi-1");
  REQUIRE(reports);
  REQUIRE(reports->size() == 1);
  CHECK((*reports)[0].message.empty());
  CHECK((*reports)[0].throughput_json == R"({"tokens_per_s":4.5})");
}

TEST_CASE("a state file from before the throughput column is upgraded in place, keeping its reports") {
  test::TempDir dir;
  const auto file = dir / "old.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE reports (board TEXT, rollout_id TEXT, sequence INTEGER, phase TEXT, "
                         "running_release TEXT, message TEXT, checks_json TEXT, at_ms INTEGER, "
                         "PRIMARY KEY (board, sequence));"
                         "INSERT INTO reports VALUES ('pi-1','r0',1,'COMMITTED','6.1-a','old','[]',5);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto st = store::Store::open(file);
  REQUIRE(st);
  REQUIRE((*st)->add_report({"pi-1", "r1", 2, "COMMITTED", "6.1-b", "new", "[]", 6, R"({"tokens_per_s":2})"}));
  auto reports = (*st)->reports("pi-1");
  REQUIRE(reports);
  REQUIRE(reports->size() == 2);
  CHECK((*reports)[0].throughput_json == R"({"tokens_per_s":2})");
  CHECK((*reports)[1].message == "old");
  CHECK((*reports)[1].throughput_json.empty());
  // Opening again does not try to add the column twice.
  st->reset();
  CHECK(store::Store::open(file));
}

TEST_CASE("a state file from before signed rollouts gains their columns, keeping its rollouts") {
  test::TempDir dir;
  const auto file = dir / "old.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE rollouts (id TEXT PRIMARY KEY, bundle TEXT, build_key TEXT, kernel_release TEXT, "
                         "inventory TEXT, lim TEXT, serial TEXT, max_fail TEXT, state TEXT, message TEXT, "
                         "started_ms INTEGER, updated_ms INTEGER);"
                         "INSERT INTO rollouts VALUES ('r0','/b','k','6.1-a','inv.yml','all','1,100%','0%','done','',1,2);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto st = store::Store::open(file);
  REQUIRE(st);
  auto old = (*st)->rollout("r0");
  REQUIRE(old);
  REQUIRE(*old);
  CHECK((*old)->state == vocab::RolloutState::done);
  CHECK((*old)->signed_by.empty());
  store::RolloutRow r;
  r.id = "r1";
  r.signed_by = "abc";
  REQUIRE((*st)->put_rollout(r));
  auto all = (*st)->rollouts(10);
  REQUIRE(all);
  CHECK(all->size() == 2);
}

TEST_CASE("the last accepted report sequence of a board is kept in the file: a replay stays a replay after reopening") {
  test::TempDir dir;
  const auto file = dir / "fleet.db";
  {
    // A file made before the table existed gains it on open (CREATE TABLE IF NOT EXISTS).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE rollouts (id TEXT PRIMARY KEY, bundle TEXT, build_key TEXT, "
                             "kernel_release TEXT, inventory TEXT, lim TEXT, serial TEXT, max_fail TEXT, state TEXT, "
                             "message TEXT, started_ms INTEGER, updated_ms INTEGER);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto st = store::Store::open(file);
    REQUIRE(st);
    CHECK((*st)->advance_report_sequence("pi-1", "r1", 3).value());
    CHECK_FALSE((*st)->advance_report_sequence("pi-1", "r1", 3).value());  // the same again
    CHECK_FALSE((*st)->advance_report_sequence("pi-1", "r1", 2).value());  // an older one
    CHECK((*st)->advance_report_sequence("pi-1", "r1", 5).value());        // a gap is fine
    CHECK((*st)->advance_report_sequence("pi-2", "r1", 1).value());        // another board: its own count
    CHECK((*st)->advance_report_sequence("pi-1", "r2", 1).value());        // another rollout: its own count
    auto huge = (*st)->advance_report_sequence("pi-1", "r1", std::uint64_t{1} << 63);
    REQUIRE_FALSE(huge);
    CHECK(huge.error().code == Errc::invalid_input);
  }
  auto st = store::Store::open(file);
  REQUIRE(st);
  CHECK_FALSE((*st)->advance_report_sequence("pi-1", "r1", 5).value());
  CHECK_FALSE((*st)->advance_report_sequence("pi-1", "r1", 4).value());
  CHECK((*st)->advance_report_sequence("pi-1", "r1", 6).value());
}

TEST_CASE("a report is accepted once: its row and its sequence are written together, a replay writes neither") {
  test::TempDir dir;
  auto st = store::Store::open(dir / "fleet.db");
  REQUIRE(st);
  store::ReportRow r{"pi-1", "r1", 4, "COMMITTED", "6.1-new", "first", "[]", 10, ""};
  CHECK((*st)->accept_report(r).value());
  r.message = "replayed";
  CHECK_FALSE((*st)->accept_report(r).value());
  auto reports = (*st)->reports("pi-1");
  REQUIRE(reports);
  REQUIRE(reports->size() == 1);
  CHECK((*reports)[0].message == "first");
  CHECK_FALSE((*st)->advance_report_sequence("pi-1", "r1", 4).value());
}
