// fleetctl's HTTP server on loopback over a real SQLite file, asked by a real HTTP client:
// the token, the login cookie, the pages, /metrics checked by Prometheus' own promtool, and
// the event stream carrying a change written to the database meanwhile.
#include <httplib.h>

#include <catch2/catch.hpp>

#include <thread>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "controller/web/server.hpp"
#include "tests/controller/web/fixture.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_token = "0123456789abcdef0123456789abcdef";

struct Served {
  test::TempDir dir;
  std::filesystem::path db = dir / "fleet.db";
  std::unique_ptr<web::HttpServer> server;
  Served() {
    auto st = store::Store::open(db);
    REQUIRE(st);
    test::seed_finished(**st);
    auto s = web::HttpServer::start({"127.0.0.1:0", k_token, db});
    REQUIRE(s);
    server = std::move(*s);
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(10s);
    c.set_connection_timeout(5s);
    return c;
  }
};

const httplib::Headers k_bearer = {{"Authorization", std::string("Bearer ") + k_token}};

}  // namespace

TEST_CASE("every page but the login needs the token: a browser is sent to log in, a script gets 401") {
  Served s;
  auto c = s.client();
  auto plain = c.Get("/metrics");
  REQUIRE(plain);
  CHECK(plain->status == 401);
  CHECK(plain->get_header_value("WWW-Authenticate") == "Bearer realm=\"fleetctl\"");
  auto wrong = c.Get("/api/status", {{"Authorization", "Bearer nope"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto browser = c.Get("/rollouts/r-finished", {{"Accept", "text/html,application/xhtml+xml"}});
  REQUIRE(browser);
  CHECK(browser->status == 303);
  // The server writes "/login?next=%2Frollouts%2Fr-finished"; httplib's client decodes headers.
  CHECK(browser->get_header_value("Location") == "/login?next=/rollouts/r-finished");
  // The login form: a wrong token is sent back, the right one gets a cookie that opens pages.
  auto bad = c.Post("/login", "token=nope&next=%2F", "application/x-www-form-urlencoded");
  REQUIRE(bad);
  CHECK(bad->status == 303);
  CHECK(bad->get_header_value("Location").starts_with("/login?failed=1"));
  auto good = c.Post("/login", std::string("token=") + k_token + "&next=%2Frollouts%2Fr-finished",
                     "application/x-www-form-urlencoded");
  REQUIRE(good);
  CHECK(good->status == 303);
  CHECK(good->get_header_value("Location") == "/rollouts/r-finished");
  const std::string cookie = good->get_header_value("Set-Cookie");
  CHECK_THAT(cookie, Catch::Contains("HttpOnly"));
  CHECK_THAT(cookie, Catch::Contains("SameSite=Strict"));
  auto page = c.Get("/rollouts/r-finished", {{"Cookie", cookie.substr(0, cookie.find(';'))}});
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK_THAT(page->body, Catch::Contains("Wave 1 (canary)"));
  // Never sent to another site after logging in.
  auto away = c.Post("/login", std::string("token=") + k_token + "&next=%2F%2Fevil.example", "application/x-www-form-urlencoded");
  REQUIRE(away);
  CHECK(away->get_header_value("Location") == "/");
  // The cookie opens the pages, but it is not the token (which also opens the gRPC service).
  CHECK_THAT(cookie, !Catch::Contains(k_token));
  CHECK_THAT(cookie, Catch::Contains("Max-Age=43200"));
  // Every answer forbids inline script.
  CHECK_THAT(page->get_header_value("Content-Security-Policy"), Catch::Contains("script-src 'self'"));
}

TEST_CASE("pages, JSON and a 404 that names what is missing") {
  Served s;
  auto c = s.client();
  auto fleet = c.Get("/", k_bearer);
  REQUIRE(fleet);
  CHECK(fleet->status == 200);
  CHECK_THAT(fleet->body, Catch::Contains("data-board=\"pi-2\""));
  CHECK_THAT(fleet->body, !Catch::Contains("<script>window"));
  auto board = c.Get("/boards/pi-1", k_bearer);
  REQUIRE(board);
  CHECK(board->status == 200);
  CHECK_THAT(board->body, Catch::Contains("6.12.47-v8-16k"));  // its history holds the older kernel
  auto hostile = c.Get("/boards/%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E", k_bearer);
  REQUIRE(hostile);
  CHECK(hostile->status == 200);
  CHECK_THAT(hostile->body, Catch::Contains("<h1>Board &lt;script&gt;window.pwned=1&lt;/script&gt;</h1>"));
  auto none = c.Get("/rollouts/r-none", k_bearer);
  REQUIRE(none);
  CHECK(none->status == 404);
  CHECK_THAT(none->body, Catch::Contains("No rollout r-none in"));
  auto json = c.Get("/api/status", k_bearer);
  REQUIRE(json);
  CHECK_THAT(json->body, Catch::Contains("\"rollouts\":[{\"id\":\"r-finished\""));
  auto css = c.Get("/static/fleet.css");  // no token: the login page needs it
  REQUIRE(css);
  CHECK(css->status == 200);
}

TEST_CASE("/metrics passes promtool check metrics") {
  Served s;
  auto c = s.client();
  auto m = c.Get("/metrics", k_bearer);
  REQUIRE(m);
  REQUIRE(m->status == 200);
  CHECK_THAT(m->get_header_value("Content-Type"), Catch::Contains("text/plain; version=0.0.4"));
  REQUIRE(fs::write_file_atomic(s.dir / "metrics.txt", m->body));
  // promtool reads the text on stdin: through a shell-free redirect, a file as stdin.
  std::string out;
  auto r = process::run({{"/bin/sh", "-c", "promtool check metrics < \"$0\"", (s.dir / "metrics.txt").string()}, {}, {}, 60s},
                        [&](std::string_view line) { out += std::string(line) + "\n"; });
  REQUIRE(r);
  INFO(out);
  CHECK(r->exit_code == 0);
  CHECK(out.empty());  // no lint warning either
}

TEST_CASE("the event stream carries a board's new step as the database gets it") {
  Served s;
  auto c = s.client();
  std::string received;
  std::thread writer([&] {
    std::this_thread::sleep_for(700ms);
    auto st = store::Store::open(s.db);
    REQUIRE(st);
    store::BoardRow row;
    row.rollout_id = "r-live";
    row.board = "pi-1";
    row.step = vocab::Step::install;
    row.running_release = "6.12.49-v8-16k-fleet";
    REQUIRE((*st)->put_board(row));
  });
  auto since = std::to_string(store::now_ms());
  auto res = c.Get(("/events?since=" + since).c_str(), k_bearer, [&](const char* data, std::size_t n) {
    received.append(data, n);
    return received.find("\"step\":\"install\"") == std::string::npos && received.size() < 1 << 20;
  });
  writer.join();
  INFO(received);
  CHECK_THAT(received, Catch::Contains("event: board\ndata: {\"board\":\"pi-1\",\"rollout_id\":\"r-live\""));
  CHECK_THAT(received, Catch::Contains("retry: 2000"));
  // The stream looks 2 s behind its last row (a row stamped before a page read the database
  // but committed after), and sends each row once however often it finds it again.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = received.find(what); at != std::string::npos; at = received.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("\"board\":\"pi-1\",\"rollout_id\":\"r-live\"") == 1);
  CHECK(count("\"board\":\"pi-2\",\"rollout_id\":\"r-finished\"") <= 1);
}

TEST_CASE("after logging in, a browser goes back only to a plain path of this server") {
  struct Case {
    const char* next;
    const char* to;
  } cases[] = {
      {"/rollouts/r-1", "/rollouts/r-1"},
      {"/boards/pi%2D1?x=1&y=2", "/boards/pi%2D1?x=1&y=2"},
      {"//evil.example", "/"},
      {"/\\evil.example", "/"},
      {"/\t/evil.example", "/"},   // browsers drop the tab: "//evil.example"
      {"/\n/evil.example", "/"},
      {"https://evil.example", "/"},
      {"/\xc3\xa9", "/"},
      {"", "/"},
      {"javascript:alert(1)", "/"},
  };
  for (const auto& c : cases) {
    INFO(c.next);
    CHECK(web::safe_next(c.next) == c.to);
  }
  CHECK(web::session_value(k_token).size() == 64);
  CHECK(web::session_value(k_token) != web::session_value("another token of the same length......"));
}

TEST_CASE("a wrong --http address or state is said at start") {
  test::TempDir dir;
  auto db = dir / "fleet.db";
  REQUIRE(store::Store::open(db));
  auto bad_port = web::HttpServer::start({"127.0.0.1:99999", k_token, db});
  REQUIRE_FALSE(bad_port);
  CHECK_THAT(bad_port.error().message, Catch::Contains("--http 127.0.0.1:99999: the port is not a number from 0 to 65535"));
  auto no_colon = web::HttpServer::start({"localhost", k_token, db});
  REQUIRE_FALSE(no_colon);
  CHECK_THAT(no_colon.error().message, Catch::Contains("say HOST:PORT"));
  auto no_token = web::HttpServer::start({"127.0.0.1:0", "", db});
  REQUIRE_FALSE(no_token);
  auto no_db = web::HttpServer::start({"127.0.0.1:0", k_token, dir / "typo.db"});
  REQUIRE_FALSE(no_db);
  CHECK_THAT(no_db.error().message, Catch::Contains("typo.db: no state database there"));
  CHECK_FALSE(std::filesystem::exists(dir / "typo.db"));  // not made, empty, in its place
}

TEST_CASE("a state database removed under a running server is said, not made again") {
  Served s;
  std::filesystem::remove(s.db);
  auto c = s.client();
  auto page = c.Get("/", k_bearer);
  REQUIRE(page);
  CHECK(page->status == 500);
  CHECK_THAT(page->body, Catch::Contains("is gone"));
  CHECK_FALSE(std::filesystem::exists(s.db));
}

TEST_CASE("the fleet page and /api/models show which boards hold which model") {
  Served s;
  {
    auto st = store::Store::open(s.db);
    REQUIRE(st);
    const std::string sha(64, 'c');
    REQUIRE((*st)->put_model({"pi-1", "/var/lib/fleet/models/m.gguf", "m.gguf", sha, 4'200'000'000, "push-1", 5000}));
    REQUIRE((*st)->put_model({"pi-2", "/var/lib/fleet/models/m.gguf", "m.gguf", sha, 4'200'000'000, "push-1", 6000}));
  }
  auto c = s.client();
  auto fleet = c.Get("/", k_bearer);
  REQUIRE(fleet);
  REQUIRE(fleet->status == 200);
  CHECK_THAT(fleet->body, Catch::Contains("<table id=\"models\">"));
  CHECK_THAT(fleet->body, Catch::Contains("<tr data-model=\"m.gguf\"><td>m.gguf</td><td>4.2 GB</td>"));
  CHECK_THAT(fleet->body, Catch::Contains("<b>2 of 3</b>: <a href=\"/boards/pi-1\">pi-1</a>, <a href=\"/boards/pi-2\">pi-2</a>"));
  auto json = c.Get("/api/models", k_bearer);
  REQUIRE(json);
  REQUIRE(json->status == 200);
  CHECK_THAT(json->body, Catch::Contains("\"size_bytes\":\"4200000000\""));
  CHECK(c.Get("/api/models")->status == 401);  // the token, as every page
}
