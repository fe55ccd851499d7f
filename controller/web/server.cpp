#include "controller/web/server.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <chrono>
#include <map>
#include <thread>

#include "common/fs.hpp"
#include "controller/status/status_service.hpp"
#include "controller/store/store.hpp"
#include "controller/tls/secret.hpp"
#include "controller/web/metrics.hpp"
#include "controller/web/pages.hpp"
#include "proto/codec.hpp"

namespace fleet::web {
namespace {

// Bounds of the server, each a resource a caller could otherwise hold without end.
struct Limits {
  int threads;                            // requests served at once
  int streams;                            // event streams open at once (each holds a thread)
  std::chrono::milliseconds poll;         // how often a stream looks at the database
  std::chrono::seconds stream_lifetime;   // a stream then ends; EventSource reconnects by itself
  std::size_t max_body;                   // the login form is the only body
  std::chrono::seconds session;           // a login lasts a working day
  std::chrono::milliseconds overlap;      // a stream looks this far behind its last row again
  std::chrono::minutes replay;            // the furthest back a stream starts (Last-Event-ID)
};
// Streams hold a thread each: 24 of 32, so pages and scrapes always have 8.
constexpr Limits k_limits{32, 24, std::chrono::milliseconds(400), std::chrono::seconds(600), 4096,
                          std::chrono::hours(12), std::chrono::milliseconds(2000), std::chrono::minutes(10)};

constexpr const char* k_cookie = "fleet_token";
constexpr int k_history = 200;  // reports on a board's page

std::string cookie_value(const httplib::Request& req, std::string_view name) {
  const std::string header = req.get_header_value("Cookie");
  std::size_t at = 0;
  while (at < header.size()) {
    auto end = header.find(';', at);
    std::string_view part = std::string_view(header).substr(at, end == std::string::npos ? std::string::npos : end - at);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

}  // namespace

// Where the login form may send a browser back to: a path of this server, never another site.
// Browsers drop tabs and newlines from URLs and read "\\" as "/", so "/\t/evil" or "/\\evil"
// would become "//evil": only plain path characters pass.
std::string safe_next(std::string_view next) {
  if (next.empty() || next[0] != '/' || next.size() > 512) return "/";
  if (next.size() > 1 && (next[1] == '/' || next[1] == '\\')) return "/";
  for (unsigned char c : next) {
    if (!(std::isalnum(c) || std::string_view("/._~%-?=&").find(static_cast<char>(c)) != std::string_view::npos)) return "/";
  }
  return std::string(next);
}

// The login cookie: not the token itself (which also opens the gRPC StatusService), but a
// value derived from it that opens only these pages.
std::string session_value(std::string_view token) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static constexpr std::string_view k_purpose = "fleetctl web session v1";
  if (!HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()), reinterpret_cast<const unsigned char*>(k_purpose.data()),
            k_purpose.size(), mac, &len)) {
    return "";
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

namespace {

// httplib's set_redirect decodes the URL it is given; the Location is kept as written here.
void see_other(httplib::Response& res, const std::string& url) {
  res.status = 303;
  res.set_header("Location", url);
}

std::int64_t since_param(const httplib::Request& req) {
  std::string v = req.get_header_value("Last-Event-ID");
  if (v.empty()) v = req.get_param_value("since");
  const std::int64_t now = store::now_ms();
  std::int64_t since = now;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size()) since = now;
  // An old id would replay the whole database in one answer: a page that old reloads instead.
  const std::int64_t oldest = now - std::chrono::duration_cast<std::chrono::milliseconds>(k_limits.replay).count();
  return std::clamp(since, oldest, now);
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(HttpOptions o) : opts(std::move(o)), session(session_value(opts.token)) {}

  HttpOptions opts;
  std::string session;  // the login cookie's value
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<int> streams{0};
  std::atomic<std::uint64_t> requests{0}, refused{0}, scrapes{0};

  bool authorized(const httplib::Request& req) const {
    std::string auth = req.get_header_value("Authorization");
    if (auth.starts_with("Bearer ") && tls::same_secret(auth.substr(7), opts.token)) return true;
    const std::string c = cookie_value(req, k_cookie);
    return !c.empty() && tls::same_secret(c, session);
  }

  // A database that was moved or removed is said, not made again empty (Store::open would).
  Result<std::unique_ptr<store::Store>> open_store() const {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(opts.state_db, ec)) {
      return fail(Errc::not_found, "the state database " + opts.state_db.string() + " is gone");
    }
    return store::Store::open(opts.state_db);
  }

  static void error_page(httplib::Response& res, int status, const std::string& what) {
    res.status = status;
    res.set_content(not_found_page(what), "text/html; charset=utf-8");
  }

  Result<fleet::v1::StatusSnapshot> snapshot(store::Store& st, bool rollout_boards) const {
    auto boards = FLEET_TRY(st.latest_boards());
    auto rollouts = FLEET_TRY(st.rollouts(10));
    fleet::v1::StatusSnapshot snap;
    for (const auto& b : boards) *snap.add_boards() = controller::board_status(st, b);
    for (const auto& r : rollouts) controller::fill_rollout(st, r, snap.add_rollouts(), rollout_boards);
    return snap;
  }

  void routes() {
    svr.set_default_headers({
        {"Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
         "form-action 'self'; base-uri 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-store"},
    });
    svr.set_payload_max_length(k_limits.max_body);
    svr.new_task_queue = [] { return new httplib::ThreadPool(k_limits.threads); };

    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      if (req.path == "/login" || req.path.starts_with("/static/") || authorized(req)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      ++refused;
      const bool browser = req.method == "GET" && req.get_header_value("Accept").find("text/html") != std::string::npos;
      if (browser) {
        see_other(res, "/login?next=" + url_segment(req.path));
      } else {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer realm=\"fleetctl\"");
        res.set_content("401: send \"Authorization: Bearer TOKEN\" with the token of fleetctl serve (status.token)\n",
                        "text/plain");
      }
      return httplib::Server::HandlerResponse::Handled;
    });

    svr.Get("/login", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(login_page(safe_next(req.get_param_value("next")), req.has_param("failed")), "text/html; charset=utf-8");
    });
    svr.Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string next = safe_next(req.get_param_value("next"));
      if (!tls::same_secret(req.get_param_value("token"), opts.token)) {
        ++refused;
        see_other(res, "/login?failed=1&next=" + url_segment(next));
        return;
      }
      res.set_header("Set-Cookie", std::string(k_cookie) + "=" + session + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                                       std::to_string(k_limits.session.count()));
      see_other(res, next);
    });
    svr.Post("/logout", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Set-Cookie", std::string(k_cookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
      see_other(res, "/login");
    });

    svr.Get("/static/fleet.css", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(k_stylesheet), "text/css; charset=utf-8");
    });
    svr.Get("/static/fleet.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(k_script), "text/javascript; charset=utf-8");
    });
    svr.Get("/static/chart.js", [this](const httplib::Request&, httplib::Response& res) {
      auto js = fs::read_regular_file(opts.chart_js);
      // Absent: an empty script, and the board page says what to install.
      res.set_content(js ? *js : std::string("/* " + opts.chart_js.string() + " is not installed */\n"),
                      "text/javascript; charset=utf-8");
    });

    svr.Get("/", [this](const httplib::Request&, httplib::Response& res) {
      auto st = open_store();
      if (!st) return error_page(res, 500, st.error().message);
      const auto since = store::now_ms();
      auto snap = snapshot(**st, false);
      if (!snap) return error_page(res, 500, snap.error().message);
      auto models = controller::list_models(**st);
      if (!models) return error_page(res, 500, models.error().message);
      res.set_content(fleet_page(*snap, since, *models), "text/html; charset=utf-8");
    });
    svr.Get(R"(/rollouts/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      auto st = open_store();
      if (!st) return error_page(res, 500, st.error().message);
      const auto since = store::now_ms();
      auto row = (*st)->rollout(req.matches[1]);
      if (!row) return error_page(res, 500, row.error().message);
      if (!*row) return error_page(res, 404, "No rollout " + std::string(req.matches[1]) + " in " + opts.state_db.string());
      fleet::v1::RolloutStatus r;
      controller::fill_rollout(**st, **row, &r, true);
      res.set_content(rollout_page(r, since), "text/html; charset=utf-8");
    });
    svr.Get(R"(/boards/(.+))", [this](const httplib::Request& req, httplib::Response& res) { board(req, res); });
    svr.Get("/api/status", [this](const httplib::Request&, httplib::Response& res) {
      auto st = open_store();
      if (!st) return error_page(res, 500, st.error().message);
      auto snap = snapshot(**st, true);
      auto text = snap ? wire::to_json(*snap) : Result<std::string>(std::unexpected(snap.error()));
      if (!text) return error_page(res, 500, text.error().message);
      res.set_content(*text + "\n", "application/json");
    });
    svr.Get("/api/models", [this](const httplib::Request&, httplib::Response& res) {
      auto st = open_store();
      if (!st) return error_page(res, 500, st.error().message);
      auto models = controller::list_models(**st);
      auto text = models ? wire::to_json(*models) : Result<std::string>(std::unexpected(models.error()));
      if (!text) return error_page(res, 500, text.error().message);
      res.set_content(*text + "\n", "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      ++scrapes;
      auto st = open_store();
      if (!st) return error_page(res, 500, st.error().message);
      auto snap = snapshot(**st, true);
      if (!snap) return error_page(res, 500, snap.error().message);
      auto process = read_process_stats();
      res.set_content(render_metrics(*snap, process ? &*process : nullptr, {requests, refused, scrapes}),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    svr.Get("/events", [this](const httplib::Request& req, httplib::Response& res) { events(req, res); });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404 && res.body.empty()) {
        res.set_content(not_found_page("Nothing at " + req.path), "text/html; charset=utf-8");
      }
    });
  }

  void board(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    auto st = open_store();
    if (!st) return error_page(res, 500, st.error().message);
    const auto since = store::now_ms();
    auto latest = (*st)->latest_boards();
    if (!latest) return error_page(res, 500, latest.error().message);
    std::optional<fleet::v1::BoardStatus> now;
    for (const auto& b : *latest)
      if (b.board == name) now = controller::board_status(**st, b);
    auto reports = (*st)->reports(name, k_history);
    if (!reports) return error_page(res, 500, reports.error().message);
    if (!now && reports->empty()) return error_page(res, 404, "No board " + name + " in " + opts.state_db.string());
    std::vector<HistoryPoint> history;
    for (const auto& r : *reports) {
      HistoryPoint h;
      h.at_ms = r.at_ms;
      h.rollout_id = r.rollout_id;
      h.phase = r.phase;
      h.kernel_release = r.running_release;
      h.message = r.message;
      if (auto v = controller::stored_verification(r)) {
        for (const auto& c : v->checks()) {
          ++h.checks;
          if (!c.pass()) {
            ++h.failed;
            h.failed_names += (h.failed_names.empty() ? "" : ", ") + c.property();
          }
        }
      } else {
        h.message += (h.message.empty() ? "" : "; ") + v.error().message;
      }
      if (!r.throughput_json.empty()) {
        if (auto t = wire::parse<fleet::v1::Throughput>(r.throughput_json, "report of " + r.board)) {
          h.tokens_per_s = t->tokens_per_s();
          h.shape = t->shape();
        }
      }
      history.push_back(std::move(h));
    }
    res.set_content(board_page(name, now ? &*now : nullptr, history, since), "text/html; charset=utf-8");
  }

  // Server-Sent Events: "board" with a BoardStatus for every row that changes, "rollout"
  // with a RolloutStatus (without boards) when the followed rollout's state does. The event
  // id is the row's time, so a reconnecting EventSource (Last-Event-ID) misses nothing.
  void events(const httplib::Request& req, httplib::Response& res) {
    if (streams.fetch_add(1) >= k_limits.streams) {
      --streams;
      // EventSource gives up on any answer but 200: this one asks it to come back later.
      res.set_content("retry: 15000\n: too many event streams open; try again later\n\n", "text/event-stream");
      return;
    }
    auto st = open_store();
    if (!st) {
      --streams;
      return error_page(res, 500, st.error().message);
    }
    struct Stream {
      std::shared_ptr<store::Store> store;
      std::string rollout;
      std::int64_t since;
      std::int64_t rollout_updated = -1;
      bool first = true;
      std::chrono::steady_clock::time_point until;
      // What was sent of each board, by its row's time: the look behind `since` (a row
      // stamped before a page read it but committed after) finds rows again, sent once.
      std::map<std::pair<std::string, std::string>, std::int64_t> sent;
    };
    auto s = std::make_shared<Stream>();
    s->store = std::shared_ptr<store::Store>(std::move(*st));
    s->rollout = req.get_param_value("rollout");
    s->since = since_param(req);
    s->until = std::chrono::steady_clock::now() + k_limits.stream_lifetime;
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, s](std::size_t, httplib::DataSink& sink) {
          std::string out;
          if (s->first) out += "retry: 2000\n\n";
          s->first = false;
          auto rows = s->store->boards_changed_since(s->since - k_limits.overlap.count(), s->rollout);
          if (!rows) {
            out += "event: failure\ndata: " + rows.error().message + "\n\n";
          } else {
            std::int64_t newest = s->since;
            for (const auto& b : *rows) {
              newest = std::max(newest, b.updated_ms);
              auto& last = s->sent[{b.rollout_id, b.board}];
              if (last >= b.updated_ms) continue;
              last = b.updated_ms;
              auto json = wire::to_json(controller::board_status(*s->store, b));
              if (json) out += "id: " + std::to_string(b.updated_ms) + "\nevent: board\ndata: " + *json + "\n\n";
            }
            s->since = newest;
            // Forget what fell out of the look behind.
            std::erase_if(s->sent, [&](const auto& kv) { return kv.second < s->since - 2 * k_limits.overlap.count(); });
          }
          if (!s->rollout.empty()) {
            auto r = s->store->rollout(s->rollout);
            if (r && *r && (*r)->updated_ms != s->rollout_updated) {
              s->rollout_updated = (*r)->updated_ms;
              fleet::v1::RolloutStatus rs;
              controller::fill_rollout(*s->store, **r, &rs, false);
              if (auto json = wire::to_json(rs)) out += "event: rollout\ndata: " + *json + "\n\n";
            }
          }
          if (out.empty()) out = ": idle\n\n";  // a write finds a closed connection
          if (!sink.write(out.data(), out.size())) return false;
          if (stopping || std::chrono::steady_clock::now() > s->until) {
            sink.done();
            return true;
          }
          for (auto waited = std::chrono::milliseconds(0); waited < k_limits.poll && !stopping;
               waited += std::chrono::milliseconds(100)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
          return true;
        },
        [this](bool) { --streams; });
  }
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpOptions& options) {
  if (options.token.empty()) return fail(Errc::invalid_input, "the dashboard needs the status token");
  auto colon = options.address.rfind(':');
  if (colon == std::string::npos) return fail(Errc::invalid_input, "--http " + options.address + ": say HOST:PORT");
  std::string host = options.address.substr(0, colon);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(options.address.substr(colon + 1), &used);
    if (used != options.address.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return fail(Errc::invalid_input, "--http " + options.address + ": the port is not a number from 0 to 65535");
  }
  // The database must be there now: a wrong --state is said at start, not on the first page.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.state_db, ec)) {
    return fail(Errc::invalid_input, "--state " + options.state_db.string() +
                                         ": no state database there (a rollout makes it; fleetctl serve makes it too)");
  }
  FLEET_TRY(store::Store::open(options.state_db));
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>(options);
  auto& impl = *s->impl_;
  impl.routes();
  if (port == 0) {
    impl.port = impl.svr.bind_to_any_port(host);
    if (impl.port <= 0) return fail(Errc::io, "--http " + options.address + ": cannot listen there");
  } else {
    if (!impl.svr.bind_to_port(host, port)) {
      return fail(Errc::io, "--http " + options.address + ": cannot listen there (in use, or not this machine's address)");
    }
    impl.port = port;
  }
  impl.thread = std::thread([&impl] { impl.svr.listen_after_bind(); });
  // httplib's stop() does nothing before the loop runs: a stop right after start would wait
  // on the thread for ever.
  for (int i = 0; i < 500 && !impl.svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!impl.svr.is_running()) {
    s->stop();
    return fail(Errc::io, "--http " + options.address + ": the server did not start");
  }
  return s;
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // Until the loop has seen it: a stop before the loop ran would be lost.
  while (impl_->thread.joinable()) {
    impl_->svr.stop();
    if (!impl_->svr.is_running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

HttpServer::~HttpServer() { stop(); }

}  // namespace fleet::web
