// HttpServer: sqlbakd's optional HTTP listener (`http:` in the config): the
// dashboard at `/`, the JSON API under `/api/`, and `/metrics` for Prometheus.
// docs/API.md is the contract.
//
// The server never touches daemon state. It turns each API request into a
// control Request (docs/PROTOCOL.md) and hands it to a RequestHandler (the
// daemon passes Daemon::handle), collecting the reply through a Responder of
// its own; so `/api/status` answers exactly what `sqlbakctl --json status`
// prints. Blocking work stays where the handler puts it (the worker pool).
//
// Bounded, so that no client can hold the loop: at most kMaxConnections open
// connections; when all are taken, the oldest one still waiting for its
// request is closed to make room, and when every one is busy with a request
// the newcomer gets 503. A request must arrive whole within kReadTimeout and
// its header fit in kHeaderLimit bytes (else 431); a reply must be written
// within kWriteTimeout. Only GET and HEAD without a body are served (405 with
// `Allow`, 413). Each refused request is logged in one line with its reason,
// never with the token.
//
// With `token_file`, the JSON API needs `Authorization: Bearer TOKEN`
// (compared in constant time), else 401 with `WWW-Authenticate`. Two paths are
// open: `/`, the page, which holds no data and asks for the token itself, and
// `/metrics`, for scrapers; a request to `/metrics` that does send a token
// must send the right one.
//
// Thread-safety: the loop thread only; the handler is called on it.
#pragma once

#include <utility>  // Boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "daemon/daemon.h"
#include "lib/config.h"
#include "lib/protocol.h"
#include "lib/status.h"

namespace sqlbak::daemon {

using RequestHandler = std::function<void(const Request&, std::shared_ptr<Responder>)>;

// What one request target ("/api/backups?db=shop") asks for. Pure.
struct HttpRoute {
  enum class Kind {
    kDashboard,   // "/"
    kMetrics,     // "/metrics"
    kApi,         // "/api/...": `request` is the control request behind it
    kNotFound,    // no such path
    kTraversal,   // a "." or ".." segment, plain or percent-encoded
    kBadRequest,  // malformed target or query; `message` says why
  };
  Kind kind = Kind::kNotFound;
  std::string path;     // the decoded path
  std::string api;      // kApi: "status", "backups", "report", "health", "jobs"
  Request request;      // kApi: the control request
  std::string message;  // kBadRequest
};
HttpRoute route_http_target(std::string_view target);

// The HTTP status of a control error reply's code: usage and invalid_argument
// 400, not_found 404, anything else 500.
int http_status_for_error(std::string_view code);

// Compares in time that depends only on the length of EXPECTED.
bool token_matches(std::string_view given, std::string_view expected);

class HttpServer {
 public:
  static constexpr int kMaxConnections = 32;
  static constexpr uint32_t kHeaderLimit = 8 * 1024;
  static constexpr std::chrono::seconds kReadTimeout{10};
  static constexpr std::chrono::seconds kWriteTimeout{10};

  HttpServer(boost::asio::io_context& io, HttpConfig config, RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Reads the token file, binds `listen` ("127.0.0.1:9469", "[::1]:9469",
  // "localhost:9469") and starts accepting. The error names the address.
  Status listen();
  // Stops accepting and closes every connection; replies still being computed
  // are dropped.
  void close();
  // Reads the token file again (a reload): the new token applies to the next
  // request. On an error the old token stays.
  Status reload_token();

  const HttpConfig& config() const { return config_; }
  // The bound address, "127.0.0.1:9469" (the real port when 0 was asked).
  std::string local_address() const;

  struct Shared;  // state the connections share with the server

 private:
  void accept();

  boost::asio::io_context& io_;
  HttpConfig config_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace sqlbak::daemon
