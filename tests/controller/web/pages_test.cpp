// The dashboard's pages and /metrics from messages, without a server: escaping, what a failed
// check looks like, the metric names and values Prometheus will see.
#include <catch2/catch.hpp>

#include <cmath>

#include "common/text.hpp"
#include "controller/status/status_service.hpp"
#include "controller/web/metrics.hpp"
#include "controller/web/pages.hpp"
#include "tests/controller/web/fixture.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

fleet::v1::StatusSnapshot finished_snapshot(const test::TempDir& dir) {
  auto st = store::Store::open(dir / "fleet.db");
  REQUIRE(st);
  test::seed_finished(**st);
  fleet::v1::StatusSnapshot snap;
  auto boards = (*st)->latest_boards();
  auto rollouts = (*st)->rollouts(10);
  REQUIRE(boards);
  REQUIRE(rollouts);
  for (const auto& b : *boards) *snap.add_boards() = controller::board_status(**st, b);
  for (const auto& r : *rollouts) controller::fill_rollout(**st, r, snap.add_rollouts(), true);
  return snap;
}

}  // namespace

TEST_CASE("escape and url_segment keep what boards send as text") {
  CHECK(web::escape("<script>a & 'b' \"c\"</script>") ==
        "&lt;script&gt;a &amp; &#39;b&#39; &quot;c&quot;&lt;/script&gt;");
  CHECK(web::url_segment("pi-1.rack_2~x") == "pi-1.rack_2~x");
  CHECK(web::url_segment("a/b c?<") == "a%2Fb%20c%3F%3C");
}

TEST_CASE("the pages show every board, failed checks as failed, and markup from boards as text") {
  test::TempDir dir;
  auto snap = finished_snapshot(dir);
  REQUIRE(snap.boards_size() == 3);
  const std::string fleet = web::fleet_page(snap, 1);
  for (const char* board : {"pi-1", "pi-2"}) CHECK_THAT(fleet, Catch::Contains("data-board=\"" + std::string(board) + "\""));
  CHECK_THAT(fleet, Catch::Contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
  CHECK_THAT(fleet, Catch::Contains("&lt;img src=x onerror=&quot;window.pwned=2&quot;&gt; &amp; more"));
  CHECK_THAT(fleet, !Catch::Contains("<script>window"));
  CHECK_THAT(fleet, !Catch::Contains("<img src=x"));
  // pi-2's thp check failed: marked so, with what was expected and found.
  CHECK_THAT(fleet, Catch::Contains("class=\"check fail\" data-check=\"thp\" data-pass=\"false\" "
                                    "title=\"thp: expected madvise, got never\">thp FAIL"));
  CHECK_THAT(fleet, Catch::Contains("UNDER-VOLTAGE"));  // pi-2 was measured under-voltage, at 82 C
  CHECK_THAT(fleet, Catch::Contains("82 C HOT"));
  CHECK_THAT(fleet, Catch::Contains("<td data-label=\"bootloader\">2025-05-08</td>"));  // the bootloader, from its check
  CHECK_THAT(fleet, Catch::Contains("data-live=\"/events?since=1\""));
  // What the update changed on pi-1, and how steady its figure was.
  CHECK_THAT(fleet, Catch::Contains("<small class=\"faster\" data-field=\"change\">+8.3% vs 6.12.47-v8-16k</small>"));
  CHECK_THAT(fleet, Catch::Contains("&plusmn;5%"));
  // How much of the probe's weights THP backed, and that they had no advice, as llama.cpp's.
  CHECK_THAT(fleet, Catch::Contains("their advice: none (as llama.cpp's)\">THP 25%</small>"));

  const auto& rollout = snap.rollouts(0);
  const std::string page = web::rollout_page(rollout, 7);
  CHECK_THAT(page, Catch::Contains("Wave 1 (canary)"));
  CHECK_THAT(page, Catch::Contains("<span data-field=\"wave-done\">2</span> of 2 finished"));
  CHECK_THAT(page, Catch::Contains("wave 2: 1 of 2 boards failed, more than --max-fail 0"));
  CHECK_THAT(page, Catch::Contains("data-live=\"/events?rollout=r-finished&amp;since=7\""));
  CHECK_THAT(page, Catch::Contains("href=\"/boards/%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E\""));
  CHECK_THAT(page, !Catch::Contains("<script>window"));
}

TEST_CASE("the board page charts tokens/s oldest first and lists every report") {
  std::vector<web::HistoryPoint> history(3);
  history[0] = {3000, "r2", "COMMITTED", "6.12-new", 4, 0, "", 6.5, "1b", "<b>"};
  history[1] = {2000, "r2", "VERIFY_FAILED", "6.12-new", 4, 1, "thp", 0, "", ""};
  history[2] = {1000, "r1", "COMMITTED", "6.12-old", 4, 0, "", 5.25, "1b", ""};
  CHECK(web::chart_points(history) ==
        R"([{"k":"6.12-old","t":1000,"v":5.25},{"k":"6.12-new","t":3000,"v":6.5}])");
  const std::string page = web::board_page("pi-1", nullptr, history, 1);
  CHECK_THAT(page, Catch::Contains("3 of 4 pass (failed: thp)"));
  CHECK_THAT(page, Catch::Contains("<td class=\"message\">&lt;b&gt;</td>"));
  CHECK_THAT(page, Catch::Contains("data-points=\"[{&quot;k&quot;:&quot;6.12-old&quot;"));
}

TEST_CASE("metrics: Prometheus names, a series per board, check and rollout") {
  test::TempDir dir;
  auto snap = finished_snapshot(dir);
  web::ProcessStats p{1.5, 4096, 8192, 1700000000, 9, 1024};
  const std::string m = web::render_metrics(snap, &p, {12, 3, 2});
  CHECK_THAT(web::render_metrics(snap, nullptr, {}), !Catch::Contains("process_"));
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK_THAT(m, Catch::Contains(line + "\n"));
  };
  has("# TYPE fleet_board_tokens_per_second gauge");
  has("fleet_board_tokens_per_second{board=\"pi-2\",kernel_release=\"6.12.47-v8-16k\",shape=\"1b\"} 4.75");
  has("fleet_board_check_pass{board=\"pi-2\",check=\"thp\"} 0");
  has("fleet_board_check_pass{board=\"pi-1\",check=\"thp\"} 1");
  has("fleet_board_update_outcome{board=\"pi-2\",outcome=\"rolled_back\"} 1");
  has("fleet_board_update_outcome{board=\"pi-2\",outcome=\"committed\"} 0");
  has("fleet_board_memory_read_bandwidth_bytes_per_second{board=\"pi-1\"} 12250000000");
  has("fleet_board_effective_memory_bandwidth_bytes_per_second{board=\"pi-1\",shape=\"1b\"} 8500000000");
  has("fleet_board_probe_weights_huge_page_ratio{advice=\"none\",board=\"pi-1\"} 0.25");
  has("fleet_board_temperature_celsius{board=\"pi-2\"} 82");
  has("fleet_board_undervoltage{board=\"pi-2\"} 1");
  has("fleet_board_undervoltage{board=\"pi-1\"} 0");
  has("fleet_board_baseline_tokens_per_second{board=\"pi-1\",kernel_release=\"6.12.47-v8-16k\"} 6");
  CHECK_THAT(m, Catch::Contains("fleet_board_tokens_per_second_change_ratio{board=\"pi-1\"} 0.08333"));
  has("fleet_board_tokens_timed{board=\"pi-1\"} 29");
  has("fleet_board_kernel_info{board=\"pi-1\",kernel_release=\"6.12.49-v8-16k-fleet\"} 1");
  // Label values are escaped by the text format, not refused.
  has("fleet_board_kernel_info{board=\"<script>window.pwned=1</script>\",kernel_release=\"6.12.49-v8-16k-fleet\"} 1");
  has("fleet_rollout_state{rollout=\"r-finished\",state=\"stopped\"} 1");
  has("fleet_rollout_state{rollout=\"r-finished\",state=\"running\"} 0");
  has("fleet_rollout_boards{rollout=\"r-finished\",step=\"done\"} 3");
  has("fleet_rollout_boards_by_outcome{outcome=\"committed\",rollout=\"r-finished\"} 2");
  has("fleet_rollout_waves{rollout=\"r-finished\"} 2");
  has("fleet_rollout_waves_done{rollout=\"r-finished\"} 2");
  has("process_resident_memory_bytes 4096");
  has("process_cpu_seconds_total 1.5");
  has("fleet_http_requests_total 12");
  has("fleet_http_unauthorized_requests_total 3");
}

TEST_CASE("the controller's own process figures come from /proc/self") {
  auto p = web::read_process_stats();
  REQUIRE(p);
  CHECK(p->resident_bytes > 1e6);
  CHECK(p->open_fds >= 3);
  CHECK(p->start_time_seconds > 1.6e9);
  CHECK(p->max_fds >= p->open_fds);
}

TEST_CASE("the change a report shows compares figures of the same kind, and only sane ones") {
  fleet::v1::Throughput t;
  t.set_tokens_per_s(5.4);
  CHECK_FALSE(controller::throughput_change(t));  // no baseline
  t.set_baseline_tokens_per_s(5.0);
  t.set_baseline_release("6.12-old");
  t.set_baseline_measured_by("probe 1b (synthetic weights, avx2), all threads");
  REQUIRE(controller::throughput_change(t));
  CHECK(*controller::throughput_change(t) == Approx(0.08));
  CHECK(controller::throughput_change_text(t) == "+8.0% vs 6.12-old");
  // A llama-bench baseline is compared with llama-bench's figure, not the probe's.
  t.set_baseline_measured_by("llama-bench tg16 of /m.gguf, all threads");
  t.set_llama_tg_ts(4.5);
  CHECK(*controller::throughput_change(t) == Approx(-0.1));
  t.set_baseline_tokens_per_s(std::nan(""));
  CHECK_FALSE(controller::throughput_change(t));
  CHECK(controller::throughput_change_text(t).empty());
}

TEST_CASE("the weights' THP share a report gives is shown only when sane") {
  fleet::v1::Throughput t;
  CHECK_FALSE(controller::weights_thp(t));  // an agent from before the fields
  t.set_hugepage_advice("none");
  t.set_weights_huge_fraction(0.5);
  REQUIRE(controller::weights_thp(t));
  CHECK(controller::weights_thp(t)->advice == "none");
  CHECK(controller::weights_thp(t)->share == 0.5);
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    t.set_weights_huge_fraction(bad);
    CHECK_FALSE(controller::weights_thp(t));
  }
  t.set_weights_huge_fraction(1);
  t.set_hugepage_advice("<script>");  // a board that answers wrongly: no label made of it
  CHECK_FALSE(controller::weights_thp(t));
}

TEST_CASE("the models table: one row per file by content, its boards, names from boards as text") {
  fleet::v1::StatusSnapshot snap;
  for (const char* b : {"pi-1", "pi-2", "pi-3"}) snap.add_boards()->set_board(b);
  fleet::v1::ListModelsResponse models;
  auto add = [&](const std::string& board, const std::string& name, const std::string& sha, std::uint64_t size, std::int64_t at) {
    auto* m = models.add_models();
    m->set_board(board);
    m->set_name(name);
    m->set_sha256(sha);
    m->set_size_bytes(size);
    m->set_updated_unix_ms(at);
  };
  add("pi-1", "a.gguf", std::string(64, '1'), 70'000'000, 1000);
  add("pi-2", "a.gguf", std::string(64, '1'), 70'000'000, 2000);
  add("pi-3", "a.gguf", std::string(64, '2'), 71'000'000, 3000);  // the same name, other bytes: its own row
  add("pi-3", "<b>x.gguf", std::string(64, '3'), 512, 4000);
  const std::string page = web::fleet_page(snap, 1, models);
  CHECK_THAT(page, Catch::Contains("<td>70 MB</td><td><code title=\"" + std::string(64, '1') + "\">111111111111</code></td><td><b>2 of 3</b>"));
  CHECK_THAT(page, Catch::Contains("<td>71 MB</td>"));
  CHECK_THAT(page, Catch::Contains("<b>1 of 3</b>: <a href=\"/boards/pi-3\">pi-3</a>"));
  CHECK_THAT(page, Catch::Contains("<td>&lt;b&gt;x.gguf</td><td>512 B</td>"));
  CHECK_THAT(page, !Catch::Contains("<b>x.gguf"));
  CHECK_THAT(web::fleet_page(snap, 1), Catch::Contains("No model on any board yet"));
  CHECK(fleet::text::size_text(0) == "0 B");
  CHECK(fleet::text::size_text(999) == "999 B");
  CHECK(fleet::text::size_text(1000) == "1.0 kB");
  CHECK(fleet::text::size_text(4'200'000'000) == "4.2 GB");
  CHECK(fleet::text::size_text(17'000'000'000'000'000'000ull) == "17000000 TB");
}

TEST_CASE("a board that holds a model but was in no rollout still counts among the boards") {
  fleet::v1::StatusSnapshot snap;
  snap.add_boards()->set_board("pi-1");
  fleet::v1::ListModelsResponse models;
  for (const char* b : {"pi-1", "pi-7"}) {
    auto* m = models.add_models();
    m->set_board(b);
    m->set_name("a.gguf");
    m->set_sha256(std::string(64, 'd'));
  }
  CHECK_THAT(web::fleet_page(snap, 1, models), Catch::Contains("<b>2 of 2</b>"));
}
