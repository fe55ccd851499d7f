#pragma once
// `fleetctl serve --http ADDR`: the dashboard, its live event stream and /metrics, served by
// the controller from the state database (the one `fleetctl status` reads; a rollout in
// another process writes it meanwhile).
//
// Why cpp-httplib: Debian packages it (libcpp-httplib-dev), it is one header over a small
// library, it serves with a thread pool and streams a response chunk by chunk, which is what
// Server-Sent Events need; it needs no event loop or framework of its own. civetweb (which
// prometheus-cpp's own exposer wraps) would be a second server beside it for /metrics alone.
//
// Every path but /login and /static/ needs the StatusService's token: "Authorization: Bearer
// TOKEN" (scripts, Prometheus) or the cookie the login form sets (browsers).
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::web {

struct HttpOptions {
  std::string address;  // HOST:PORT; port 0 picks a free one
  std::string token;
  std::filesystem::path state_db;
  // Chart.js, from Debian's libjs-chart.js; the board page says so when it is absent.
  std::filesystem::path chart_js = "/usr/share/javascript/chart.js/chart.min.js";
};

// Where the login form sends a browser back to: `next` if it is a plain path of this server,
// else "/" (no other site, however the browser would read the URL).
std::string safe_next(std::string_view next);
// The login cookie's value for `token`: HMAC-SHA256 of a fixed purpose, so the cookie does not
// carry the token that also opens the gRPC StatusService.
std::string session_value(std::string_view token);

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(const HttpOptions& options);
  ~HttpServer();
  int port() const;
  void stop();

  class Impl;

 private:
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleet::web
