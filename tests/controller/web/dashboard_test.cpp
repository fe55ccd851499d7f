// The dashboard in a real browser: Debian's Chromium, headless, driven over the DevTools
// protocol (tests/support/cdp.py), against fleetctl's HTTP server. Assertions are on the
// DOM the browser built; screenshots of every page are saved beside the test binary
// (screenshots/), at 1280x800 and at a phone's 390x844.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "controller/web/server.hpp"
#include "tests/controller/web/fixture.hpp"
#include "tests/support/light_rack.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* k_token = "c0ffeec0ffeec0ffeec0ffeec0ffee00";

// Runs a cdp.py script; its output, whatever happened.
test::Ran browse(const std::filesystem::path& dir, const json& steps) {
  REQUIRE(fs::write_file_atomic(dir / "steps.json", steps.dump(1)));
  test::Ran ran;
  auto r = process::run({{"/usr/bin/python3", FLEET_SOURCE_DIR "/tests/support/cdp.py", "--out", FLEET_SCREENSHOTS,
                          (dir / "steps.json").string()},
                         {}, {}, 300s},
                        [&](std::string_view line) { ran.output += std::string(line) + "\n"; });
  REQUIRE(r);
  ran.exit_code = r->exit_code;
  return ran;
}

// Waits (bounded) for the browser to reach a step that writes `file`.
bool reached(const std::filesystem::path& file, std::chrono::seconds bound) {
  for (auto waited = 0ms; waited < bound; waited += 100ms) {
    if (std::filesystem::exists(file)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// The JS of a check on the row of board `name` (compared as data, as fleet.js does).
std::string row(const std::string& name, const std::string& then) {
  return "(() => { const tr = [...document.querySelectorAll('tr[data-board]')].find(t => t.dataset.board === " +
         json(name).dump() + "); return !!tr && (" + then + "); })()";
}

json login(const std::string& base) {
  return json::array({
      {{"go", base + "/"}},
      {{"wait", "location.pathname === '/login'"}, {"what", "a browser without the token is sent to the login form"}},
      {{"shot", "login"}, {"width", 1280}, {"height", 800}},
      {{"fill", "#token"}, {"value", "not-the-token"}},
      {{"click", "#login"}},
      {{"wait", "location.search.includes('failed=1') && !!document.getElementById('login-error')"},
       {"what", "a wrong token is refused on the form"}},
      {{"fill", "#token"}, {"value", k_token}},
      {{"click", "#login"}},
      {{"wait", "location.pathname === '/' && !!document.getElementById('boards')"},
       {"what", "the right token opens the fleet page"}},
  });
}

void add(json& steps, const json& more) {
  for (const auto& s : more) steps.push_back(s);
}

}  // namespace

TEST_CASE("the dashboard in Chromium: a finished rollout, escaping, a failed check, a live change, the chart") {
  test::TempDir dir;
  const auto db = dir / "fleet.db";
  {
    auto st = store::Store::open(db);
    REQUIRE(st);
    test::seed_finished(**st);
  }
  auto server = web::HttpServer::start({"127.0.0.1:0", k_token, db});
  REQUIRE(server);
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  const std::string hostile = test::k_hostile_board;
  const auto ready = dir / "ready";

  json steps = login(base);
  add(steps, json::array({
      {{"check", "document.querySelectorAll('#boards tr[data-board]').length === 3"}, {"what", "every board is listed"}},
      {{"check", row(hostile, "tr.querySelector('a').textContent === " + json(hostile).dump())},
       {"what", "a board named with <script> is listed by that name, as text"}},
      {{"check", row("pi-1", "tr.querySelector('[data-field=message]').textContent === 'committed'")},
       {"what", "pi-1's message"}},
      {{"check", row(hostile, "tr.querySelector('[data-field=message]').textContent === " +
                                  json(test::k_hostile_message).dump())},
       {"what", "a message holding an <img onerror> is shown as text"}},
      {{"check", "window.pwned === undefined && document.querySelectorAll('main img, main script').length === 0"},
       {"what", "nothing a board sent ran or became an element"}},
      // A wait, not a check: the colour comes from fleet.css, which a loaded CI machine may not
      // have applied yet when the rows are there (a clean-clone run saw the row but not the red).
      {{"wait", row("pi-2", "(c => c.dataset.pass === 'false' && c.classList.contains('fail') && c.textContent === "
                             "'thp FAIL' && getComputedStyle(c).color === 'rgb(179, 38, 30)')(tr.querySelector('[data-check=thp]'))")},
       {"what", "pi-2's failed thp check is shown failed, in red"}},
      {{"check", row("pi-1", "tr.querySelector('[data-check=thp]').dataset.pass === 'true'")},
       {"what", "pi-1's thp check passed"}},
      {{"check", row("pi-2", "tr.textContent.includes('UNDER-VOLTAGE') && tr.textContent.includes('82 C HOT')")},
       {"what", "pi-2's under-voltage and temperature are marked"}},
      {{"check", row("pi-1", "tr.textContent.includes('6.50') && tr.textContent.includes('2025-05-08')")},
       {"what", "pi-1's tokens/s and bootloader"}},
      {{"wait", "document.getElementById('live').textContent === 'live'"}, {"what", "the event stream is open"}},
      {{"check", "document.documentElement.scrollWidth <= window.innerWidth"},
       {"what", "the page fits 1280 px without scrolling sideways"}},
      {{"shot", "fleet"}, {"width", 1280}, {"height", 800}},
      {{"shot", "fleet-phone"}, {"width", 390}, {"height", 844}},
      {{"size", {390, 844}}},
      {{"check", "document.documentElement.scrollWidth <= 390 && "
                 "getComputedStyle(document.querySelector('#boards thead')).display === 'none'"},
       {"what", "on a phone the boards are cards that fit 390 px"}},
      {{"size", nullptr}},
      {{"eval", "window.__loaded = 'first'"}},
      {{"touch", ready.string()}},
      {{"wait", row("pi-1", "tr.querySelector('[data-field=state]').textContent === 'install'")},
       {"what", "pi-1's new step appears"}},
      {{"check", "window.__loaded === 'first'"}, {"what", "without a reload"}},
      {{"shot", "fleet-live"}, {"width", 1280}, {"height", 800}},
      {{"go", base + "/rollouts/r-finished"}},
      {{"check", "document.querySelectorAll('section.wave').length === 2"}, {"what", "the rollout's two waves"}},
      {{"check", "document.querySelector('[data-field=rollout-state]').textContent === 'stopped' && "
                 "document.querySelector('[data-field=rollout-message]').textContent.includes('more than --max-fail 0')"},
       {"what", "the gate's decision and why"}},
      {{"shot", "rollout"}, {"width", 1280}, {"height", 800}},
      {{"shot", "rollout-phone"}, {"width", 390}, {"height", 844}},
      {{"go", base + "/boards/pi-1"}},
      {{"wait", "!!window.Chart && !!Chart.getChart(document.getElementById('chart')) && "
                "Chart.getChart(document.getElementById('chart')).data.datasets[0].data.length === 2"},
       {"what", "pi-1's chart of tokens/s over time, from Debian's Chart.js, with its two measured reports"}},
      {{"check", "document.querySelectorAll('#history tbody tr').length === 2"}, {"what", "pi-1's history lists both reports"}},
      {{"shot", "board"}, {"width", 1280}, {"height", 800}},
  }));

  std::thread writer([&] {
    if (!reached(ready, 120s)) return;
    auto st = store::Store::open(db);
    if (!st) return;
    store::BoardRow b;
    b.rollout_id = "r-live";
    b.board = "pi-1";
    b.step = vocab::Step::install;
    b.running_release = "6.12.49-v8-16k-fleet";
    if (auto put = (*st)->put_board(b); !put) std::printf("writer: %s\n", put.error().message.c_str());
  });
  auto ran = browse(dir.path(), steps);
  writer.join();
  INFO(ran.output);
  CHECK(ran.exit_code == 0);
  CHECK_THAT(ran.output, Catch::Contains("screenshot"));
}

TEST_CASE("the dashboard in Chromium follows a live rollout on light boards") {
  if (::geteuid() != 0) {
    std::printf("skipped: light boards need root (mount and PID namespaces)\n");
    std::exit(77);
  }
  test::RackDir bundles("web-bundles");
  const auto stock = test::make_bundle(bundles.path / "stock", "6.1.0-light-stock",
                                       R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  const std::string tuned_contract =
      R"("page_size":16384,"thp":"madvise","numa_emulation":true,"hz":100,"tick":"NO_HZ_IDLE","headless":true)";
  const auto tuned = test::make_bundle(bundles.path / "tuned", "6.1.0-light-tuned", tuned_contract);
  const auto next = test::make_bundle(bundles.path / "next", "6.1.0-light-next", tuned_contract);
  test::LightRack rack(stock, 3);
  auto first = test::fleetctl(rack, {"rollout", "--bundle", tuned.string()});
  INFO(first.output << "\n" << rack.log());
  REQUIRE(first.exit_code == 0);

  auto server = web::HttpServer::start({"127.0.0.1:0", k_token, rack.rack() / "fleet.db"});
  REQUIRE(server);
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  test::TempDir dir;
  const auto ready = dir / "ready";
  json steps = login(base);
  add(steps, json::array({
      {{"check", "document.querySelectorAll('#boards tr[data-board]').length === 3"}, {"what", "the rack's three boards"}},
      {{"wait", "document.getElementById('live').textContent === 'live'"}, {"what", "the event stream is open"}},
      {{"eval", "window.__loaded = 'fleet'"}},
      {{"touch", ready.string()}},
      {{"wait", "[...document.querySelectorAll('#boards [data-field=state]')].some(s => s.textContent !== 'committed')"},
       {"what", "a board's step changes as the second rollout reaches it"},
       {"timeout", 60}},
      {{"check", "window.__loaded === 'fleet'"}, {"what", "without a reload"}},
      {{"shot", "live-fleet"}, {"width", 1280}, {"height", 800}},
      {{"go_js", "fetch('/api/status').then(r => r.json()).then(j => { const r = j.rollouts.find(x => x.kernel_release "
                 "=== '6.1.0-light-next'); return r ? location.origin + '/rollouts/' + encodeURIComponent(r.id) : ''; })"}},
      {{"eval", "window.__loaded = 'rollout'; window.__initial = document.querySelector('[data-field=rollout-state]').textContent"}},
      {{"check", "window.__initial === 'running'"}, {"what", "the rollout page opens while the rollout runs"}},
      {{"shot", "live-rollout-running"}, {"width", 1280}, {"height", 800}},
      {{"wait", "document.querySelector('[data-field=rollout-state]').textContent === 'done' && "
                "[...document.querySelectorAll('[data-field=step]')].every(s => s.textContent === 'done') && "
                "[...document.querySelectorAll('[data-field=outcome]')].every(s => s.textContent === 'committed')"},
       {"what", "every board's step and the rollout's state reach done on the page"},
       {"timeout", 120}},
      {{"check", "window.__loaded === 'rollout'"}, {"what", "without a reload"}},
      {{"check", "[...document.querySelectorAll('[data-check=kernel_release]')].length === 3 && "
                 "[...document.querySelectorAll('[data-check=kernel_release]')].every(c => c.title.includes('got 6.1.0-light-next'))"},
       {"what", "each board's verification chips show the new kernel's checks"}},
      {{"check", "[...document.querySelectorAll('[data-field=wave-done]')].every(w => w.textContent === '1')"},
       {"what", "each wave's count of finished boards followed"}},
      {{"shot", "live-rollout-done"}, {"width", 1280}, {"height", 800}},
  }));
  test::Ran second;
  std::thread rollout([&] {
    if (!reached(ready, 120s)) return;
    auto argv = test::fleetctl_argv(rack, {"rollout", "--bundle", next.string(), "--serial", "1,1,1"});
    auto r = process::run({argv, {}, {}, 300s}, [&](std::string_view line) { second.output += std::string(line) + "\n"; });
    second.exit_code = r ? r->exit_code : -1;
  });
  auto ran = browse(dir.path(), steps);
  rollout.join();
  INFO(ran.output << "\nsecond rollout:\n" << second.output << "\n" << rack.log());
  CHECK(ran.exit_code == 0);
  CHECK(second.exit_code == 0);
}
