#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "common/fs.hpp"
#include "common/rpc/rpc.hpp"
#include "controller/cli/cli.hpp"
#include "controller/status/status_service.hpp"
#include "controller/tls/authority.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.grpc.pb.h"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

void seed(store::Store& st) {
  store::RolloutRow r;
  r.id = "r1";
  r.kernel_release = "6.1-new";
  r.state = vocab::RolloutState::stopped;
  r.message = "1 of 1 boards failed in wave 1";
  r.serial = "1,100%";
  r.max_fail = "0%";
  r.started_ms = 1000;
  REQUIRE(st.put_rollout(r));
  for (auto [name, wave, outcome] : {std::tuple{"pi-1", 0, "rolled_back"}, std::tuple{"pi-2", 1, "not_started"}}) {
    store::BoardRow b;
    b.rollout_id = "r1";
    b.board = name;
    b.wave = wave;
    b.step = vocab::Step::done;
    b.outcome = *vocab::outcome_from_name(outcome);
    b.running_release = "6.1-old";
    REQUIRE(st.put_board(b));
  }
  REQUIRE(st.add_report({"pi-1", "r1", 4, "VERIFY_FAILED", "6.1-new", "thp",
                         R"([{"property":"thp","expected":"madvise","actual":"never","pass":false,"detail":"x"}])", 5,
                         R"({"shape":"1b","tokens_per_s":6.5,"read_gbps":12.25,"dot_path":"neon-dotprod"})"}));
}

// Every call carries the token (tests/controller/reports/tls_test.cpp: without it, refused).
struct Authorized : grpc::ClientContext {
  explicit Authorized(const std::string& t) { AddMetadata("authorization", "Bearer " + t); }
};

// A StatusServer on loopback over `db`, with a CA made in `dir`, and a stub that trusts it.
struct Served {
  Served(const test::TempDir& dir, const std::filesystem::path& db) {
    auto ca = tls::Authority::open_or_create(dir / "tls").value();
    auto started = controller::StatusServer::start({"127.0.0.1:0", ca.issue_server().value(), token}, db);
    REQUIRE(started);
    server = std::move(*started);
    auto channel = rpc::controller_channel("127.0.0.1:" + std::to_string(server->port()), ca.certificate().pem).value();
    stub = fleet::v1::StatusService::NewStub(channel);
  }
  std::string token = "00112233445566778899aabbccddeeff";
  std::unique_ptr<controller::StatusServer> server;
  std::unique_ptr<fleet::v1::StatusService::Stub> stub;
};

}  // namespace

TEST_CASE("the status service lists boards and rollouts, and streams board changes") {
  test::TempDir dir;
  auto db = dir / "fleet.db";
  auto st = store::Store::open(db);
  REQUIRE(st);
  seed(**st);
  Served served(dir, db);
  auto& stub = served.stub;
  const std::string& token = served.token;

  {
    Authorized ctx(token);
    fleet::v1::ListBoardsResponse resp;
    REQUIRE(stub->ListBoards(&ctx, {}, &resp).ok());
    REQUIRE(resp.boards_size() == 2);
    CHECK(resp.boards(0).board() == "pi-1");
    CHECK(resp.boards(0).outcome() == "rolled_back");
    REQUIRE(resp.boards(0).checks_size() == 1);
    CHECK(resp.boards(0).checks(0).actual() == "never");
    // The throughput of the same report, as the agent measured it.
    CHECK(resp.boards(0).throughput().tokens_per_s() == 6.5);
    CHECK(resp.boards(0).throughput().read_gbps() == 12.25);
    CHECK(resp.boards(0).throughput().dot_path() == "neon-dotprod");
    CHECK_FALSE(resp.boards(1).has_throughput());
  }
  {
    Authorized ctx(token);
    fleet::v1::GetRolloutRequest req;
    req.set_id("r1");
    fleet::v1::RolloutStatus resp;
    REQUIRE(stub->GetRollout(&ctx, req, &resp).ok());
    CHECK(resp.state() == "stopped");
    CHECK(resp.boards_size() == 2);
    Authorized ctx2(token);
    req.set_id("nope");
    CHECK(stub->GetRollout(&ctx2, req, &resp).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  {
    Authorized ctx(token);
    fleet::v1::ListRolloutsRequest req;
    fleet::v1::ListRolloutsResponse resp;
    REQUIRE(stub->ListRollouts(&ctx, req, &resp).ok());
    REQUIRE(resp.rollouts_size() == 1);
    CHECK(resp.rollouts(0).message() == "1 of 1 boards failed in wave 1");
  }
  {
    // Another writer (a rollout in another process) changes a board; the watcher sees it.
    Authorized ctx(token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    fleet::v1::WatchRequest req;
    auto reader = stub->Watch(&ctx, req);
    bool written = false;  // Catch's assertions belong to the test's own thread
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto other = store::Store::open(db);
      if (!other) return;
      store::BoardRow b;
      b.rollout_id = "r1";
      b.board = "pi-2";
      b.wave = 1;
      b.step = vocab::Step::install;
      written = (*other)->put_board(b).has_value();
    });
    fleet::v1::RolloutEvent ev;
    bool got = reader->Read(&ev);
    writer.join();
    REQUIRE(written);
    REQUIRE(got);
    CHECK(ev.board().board() == "pi-2");
    CHECK(ev.board().step() == "install");
    ctx.TryCancel();
  }
}

TEST_CASE("the status service and fleetctl status answer while a rollout process writes 2,000 boards") {
  test::TempDir dir;
  auto db = dir / "fleet.db";
  {
    auto st = store::Store::open(db);
    REQUIRE(st);
    store::RolloutRow r;
    r.id = "r-big";
    r.kernel_release = "6.12.49-v8-16k-fleet";
    r.state = vocab::RolloutState::running;
    REQUIRE((*st)->put_rollout(r));
  }
  constexpr int k_boards = 2000, k_batch = 100, k_reads = 10;
  const auto readers_done = dir / "readers-done";

  // The rollout: another process, as `fleetctl rollout` is beside `fleetctl serve`, with its
  // own connection and a transaction per batch as the runner writes. Every board passes
  // through the steps again and again until the readers are done (at most 5,000 passes of
  // 20 batches, or 60 s: then it exits 3 and the test fails), then once more to done.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto st = store::Store::open(db);
    if (!st) ::_exit(2);
    const vocab::Step steps[] = {vocab::Step::connect, vocab::Step::push_bundle, vocab::Step::install,
                                 vocab::Step::await_boot};
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int code = 3;
    for (int pass = 0; pass <= 5000; ++pass) {
      const bool last = std::filesystem::exists(readers_done);
      if (!last && (pass == 5000 || std::chrono::steady_clock::now() > give_up)) break;
      for (int first = 0; first < k_boards; first += k_batch) {
        std::vector<store::BoardRow> rows(k_batch);
        std::vector<const store::BoardRow*> ptrs;
        for (int i = 0; i < k_batch; ++i) {
          char name[16];
          std::snprintf(name, sizeof name, "pi-%04d", first + i);
          rows[i].rollout_id = "r-big";
          rows[i].board = name;
          rows[i].step = last ? vocab::Step::done : steps[pass % 4];
          rows[i].outcome = last ? vocab::Outcome::committed : vocab::Outcome::none;
          ptrs.push_back(&rows[i]);
        }
        if (!(*st)->put_boards(ptrs)) ::_exit(4);
      }
      if (last) {
        code = 0;
        break;
      }
    }
    ::_exit(code);
  }
  int child_status = -1;
  bool child_exited = false;
  auto child_running = [&] {
    if (!child_exited && ::waitpid(child, &child_status, WNOHANG) == child) child_exited = true;
    return !child_exited;
  };
  struct Reap {  // whatever a failed REQUIRE leaves, the writer does not outlive the test
    pid_t pid;
    bool* exited;
    ~Reap() {
      if (*exited) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{child, &child_exited};

  Served served(dir, db);
  auto& stub = served.stub;
  const std::string& token = served.token;

  // The readers, meanwhile: the service over TLS and fleetctl status on the file.
  int service_reads = 0, cli_reads = 0, last_count = 0, during = 0;
  std::vector<std::string> errors;
  for (int round = 0; round < k_reads; ++round) {
    const bool writing_before = child_running();
    Authorized ctx(token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    fleet::v1::ListBoardsResponse resp;
    auto status = stub->ListBoards(&ctx, {}, &resp);
    if (!status.ok()) {
      errors.push_back("ListBoards: " + status.error_message());
    } else {
      ++service_reads;
      // Whole transactions only: the count moves in batches and never back.
      CHECK(resp.boards_size() % k_batch == 0);
      CHECK(resp.boards_size() >= last_count);
      last_count = resp.boards_size();
    }
    auto cli = test::run_cli(controller::cli::run, {"status", "--state", db.string(), "--json"});
    if (cli.code != 0) {
      errors.push_back("fleetctl status: " + cli.err);
    } else {
      auto snap = wire::parse<fleet::v1::StatusSnapshot>(cli.out, "fleetctl status --json");
      if (snap) ++cli_reads;
      else errors.push_back(snap.error().message);
    }
    if (writing_before && child_running()) ++during;
  }
  REQUIRE(fs::write_file_atomic(readers_done, "done\n"));
  if (!child_exited) {
    REQUIRE(::waitpid(child, &child_status, 0) == child);  // its loop is bounded: 60 s at most
    child_exited = true;
  }
  INFO("service reads " << service_reads << ", fleetctl status reads " << cli_reads << ", " << during
                        << " rounds wholly while the rollout wrote");
  for (const auto& e : errors) UNSCOPED_INFO(e);
  CHECK(errors.empty());
  REQUIRE(WIFEXITED(child_status));
  CHECK(WEXITSTATUS(child_status) == 0);  // 3: it gave up before the readers were done
  CHECK(service_reads == k_reads);
  CHECK(cli_reads == k_reads);
  CHECK(during == k_reads);  // every read overlapped the writes

  Authorized ctx(token);
  fleet::v1::ListBoardsResponse done;
  REQUIRE(stub->ListBoards(&ctx, {}, &done).ok());
  REQUIRE(done.boards_size() == k_boards);
  for (const auto& b : done.boards()) CHECK(b.outcome() == "committed");
}

TEST_CASE("the status service lists which boards hold which models, all or one name") {
  test::TempDir dir;
  auto db = dir / "fleet.db";
  auto st = store::Store::open(db);
  REQUIRE(st);
  const std::string big = "llama-3.2-1b-q4_0.gguf", small = "stories110m.gguf";
  REQUIRE((*st)->put_model({"pi-2", "/var/lib/fleet/models/" + big, big, std::string(64, 'a'), 5'000'000'000, "p1", 1000}));
  REQUIRE((*st)->put_model({"pi-1", "/var/lib/fleet/models/" + big, big, std::string(64, 'a'), 5'000'000'000, "p1", 2000}));
  REQUIRE((*st)->put_model({"pi-1", "/srv/models/" + small, small, std::string(64, 'b'), 70'000'000, "p2", 3000}));
  Served served(dir, db);

  Authorized ctx(served.token);
  fleet::v1::ListModelsResponse all;
  REQUIRE(served.stub->ListModels(&ctx, {}, &all).ok());
  REQUIRE(all.models_size() == 3);
  // By name, then board.
  CHECK(all.models(0).name() == big);
  CHECK(all.models(0).board() == "pi-1");
  CHECK(all.models(1).board() == "pi-2");
  CHECK(all.models(0).size_bytes() == 5'000'000'000u);  // past 32 bits
  CHECK(all.models(0).updated_unix_ms() == 2000);
  CHECK(all.models(2).path() == "/srv/models/" + small);
  CHECK(all.models(2).push_id() == "p2");

  Authorized ctx2(served.token);
  fleet::v1::ListModelsRequest req;
  req.set_name(small);
  fleet::v1::ListModelsResponse one;
  REQUIRE(served.stub->ListModels(&ctx2, req, &one).ok());
  REQUIRE(one.models_size() == 1);
  CHECK(one.models(0).sha256() == std::string(64, 'b'));

  // Without the token: refused before the handler, as every method.
  grpc::ClientContext bare;
  CHECK(served.stub->ListModels(&bare, {}, &one).error_code() == grpc::StatusCode::UNAUTHENTICATED);

  // fleetctl model list --json: the same message through the one codec.
  auto cli = test::run_cli(controller::cli::run, {"model", "list", "--json", "--state", db.string(), "--name", big});
  REQUIRE(cli.code == 0);
  auto parsed = wire::parse<fleet::v1::ListModelsResponse>(cli.out, "model list --json");
  REQUIRE(parsed);
  REQUIRE(parsed->models_size() == 2);
  CHECK(parsed->models(1).board() == "pi-2");
  auto table = test::run_cli(controller::cli::run, {"model", "list", "--state", db.string()});
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("stories110m.gguf") && Catch::Contains("5000000000"));
}
