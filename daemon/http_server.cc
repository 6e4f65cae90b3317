#include "daemon/http_server.h"

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "daemon/dashboard_page.h"
#include "daemon/log.h"
#include "lib/metrics.h"

namespace sqlbak::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

class HttpConnection;

// A client that is being refused (503) is given this long to read the answer.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Connections being refused at once; beyond this they are closed unanswered.
constexpr int kMaxRefusing = 64;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding (and '+' as a space in a query); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

// The API: path, name, control command, and the query parameters it takes
// (HTTP name, argument name).
struct ApiEndpoint {
  const char* path;
  const char* api;
  const char* command;
  std::vector<std::pair<std::string, std::string>> params;
};

const std::vector<ApiEndpoint>& api_endpoints() {
  static const std::vector<ApiEndpoint> kEndpoints = {
      {"/api/status", "status", "status", {}},
      {"/api/jobs", "jobs", "status", {}},
      {"/api/backups", "backups", "list", {{"db", "database"}, {"target", "target"}}},
      {"/api/health", "health", "health", {{"db", "database"}}},
      {"/api/report", "report", "report", {{"days", "days"}, {"db", "database"}}},
  };
  return kEndpoints;
}

// For the log: printable ASCII only, at most 200 characters.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

// {"jobs":[...]}: the running job of each database from a `status` result.
json jobs_from_status(const json& status) {
  json jobs = json::array();
  if (status.contains("databases") && status["databases"].is_array()) {
    for (const json& db : status["databases"]) {
      if (!db.contains("running") || !db["running"].is_object()) continue;
      json j = db["running"];
      j["database"] = db.value("name", "");
      const double done = j.value("done", 0.0), total = j.value("total", 0.0);
      j["progress"] = total > 0 ? json(std::min(1.0, done / total)) : json(nullptr);
      jobs.push_back(std::move(j));
    }
  }
  return json{{"jobs", std::move(jobs)}};
}

// Collects the reply to one control request; events (progress) are not needed.
class Collect : public Responder {
 public:
  explicit Collect(std::function<void(json)> done) : done_(std::move(done)) {}
  void event(const json&) override {}
  void reply(const json& r) override {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(r);
  }

 private:
  std::function<void(json)> done_;
};

}  // namespace

struct HttpServer::Shared {
  RequestHandler handler;
  std::string token;                                       // empty: no authentication
  std::map<uint64_t, std::weak_ptr<HttpConnection>> open;  // counted connections, oldest first
  uint64_t next_id = 1;
  int refusing = 0;
  bool closed = false;
};

namespace {

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // ID 0: a connection that is only being refused, not counted in `open`.
  HttpConnection(tcp::socket socket, std::shared_ptr<HttpServer::Shared> shared, uint64_t id,
                 std::string peer)
      : stream_(std::move(socket)), shared_(std::move(shared)), id_(id), peer_(std::move(peer)) {
    if (id_ == 0) ++shared_->refusing;
  }
  ~HttpConnection() {
    if (id_ == 0) --shared_->refusing;
    unregister();
  }

  void start() { read_request(); }

  void refuse_busy() {
    method_ = "-";
    target_ = "-";
    refuse(http::status::service_unavailable, "busy",
           "too many connections (" + std::to_string(HttpServer::kMaxConnections) + " open)", {});
  }

  // Waiting for a request (or lingering after the last reply): may be closed
  // to make room for a new connection.
  bool evictable() const { return phase_ == Phase::kWaiting || phase_ == Phase::kLingering; }

  void evict() {
    if (phase_ == Phase::kWaiting && parser_ && parser_->got_some())
      log_warning("http: closed an incomplete request from " + peer_ + " to make room (" +
                  std::to_string(HttpServer::kMaxConnections) + " connections open)");
    close();
  }

  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    unregister();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  enum class Phase { kWaiting, kHandling, kWriting, kLingering, kClosed };

  void unregister() {
    if (id_ != 0) shared_->open.erase(id_);
  }

  void read_request() {
    phase_ = Phase::kWaiting;
    parser_.emplace();
    parser_->header_limit(HttpServer::kHeaderLimit);
    stream_.expires_after(HttpServer::kReadTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      if (ec == beast::error::timeout) {
        // Idle between requests is fine; a request that trickles in is not.
        if (parser_->got_some())
          log_refused(
              "-", "-", 408,
              "no complete request within " + std::to_string(HttpServer::kReadTimeout.count()) + " s");
        return close();
      }
      if (ec == http::error::header_limit) {
        method_ = "-";
        target_ = "-";
        return refuse(http::status::request_header_fields_too_large, "invalid_argument",
                      "request header larger than " + std::to_string(HttpServer::kHeaderLimit) + " bytes",
                      {});
      }
      if (ec.category() == http::make_error_code(http::error::header_limit).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        method_ = "-";
        target_ = "-";
        return refuse(http::status::bad_request, "invalid_argument", "malformed request: " + ec.message(),
                      {});
      }
      return close();  // the client went away
    }
    dispatch();
  }

  void dispatch() {
    const auto& req = parser_->get();
    method_ = std::string(req.method_string().data(), req.method_string().size());
    target_ = std::string(req.target().data(), req.target().size());
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head_)
      return refuse(http::status::method_not_allowed, "usage", "method " + method_ + " is not allowed",
                    {{"Allow", "GET, HEAD"}});
    if (parser_->chunked() || parser_->content_length().value_or(0) > 0)
      return refuse(http::status::payload_too_large, "usage", "a GET or HEAD request carries no body", {});

    HttpRoute route = route_http_target(target_);
    if (route.kind == HttpRoute::Kind::kBadRequest)
      return refuse(http::status::bad_request, "usage", route.message, {});
    if (route.kind == HttpRoute::Kind::kTraversal)
      return refuse(http::status::not_found, "not_found", "path traversal refused", {});

    if (!shared_->token.empty()) {
      const auto header = req[http::field::authorization];
      const std::string_view auth(header.data(), header.size());
      // The page itself holds no data (it asks for the token when the API
      // answers 401); /metrics is open to scrapers without a token.
      const bool open = route.kind == HttpRoute::Kind::kDashboard ||
                        (route.kind == HttpRoute::Kind::kMetrics && auth.empty());
      if (!open) {
        std::string_view given;
        bool bearer = auth.size() > 7 && (auth[6] == ' ') &&
                      std::equal(auth.begin(), auth.begin() + 6, "bearer", [](char a, char b) {
                        return std::tolower(static_cast<unsigned char>(a)) == b;
                      });
        if (bearer) {
          given = auth.substr(7);
          while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
          while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
        }
        if (!bearer || !token_matches(given, shared_->token))
          return refuse(http::status::unauthorized, "permission_denied",
                        auth.empty() ? "a bearer token is required" : "wrong or malformed bearer token",
                        {{"WWW-Authenticate", "Bearer realm=\"sqlbak\""}});
      }
    }

    switch (route.kind) {
      case HttpRoute::Kind::kDashboard: {
        const std::string_view page = dashboard_html();
        return respond(http::status::ok, "text/html; charset=utf-8", std::string(page),
                       {{"Content-Security-Policy", dashboard_csp()},
                        {"X-Frame-Options", "DENY"},
                        {"Referrer-Policy", "no-referrer"}},
                       false);
      }
      case HttpRoute::Kind::kMetrics:
        return serve_metrics();
      case HttpRoute::Kind::kApi:
        return serve_api(route);
      default:
        return refuse(http::status::not_found, "not_found", "no such path", {});
    }
  }

  void serve_api(const HttpRoute& route) {
    const std::string api = route.api;
    call({route.request}, [this, api](std::vector<json> replies) {
      const json& r = replies[0];
      if (!r.value("ok", false)) return respond_error(r);
      json result = r.contains("result") ? r["result"] : json::object();
      if (api == "jobs") result = jobs_from_status(result);
      respond(http::status::ok, "application/json", result.dump() + "\n", {}, false);
    });
  }

  void serve_metrics() {
    std::vector<Request> requests(3);
    requests[0].command = "status";
    requests[1].command = "metrics";
    requests[2].command = "health";
    for (Request& r : requests) r.args = json::object();
    call(std::move(requests), [this](std::vector<json> replies) {
      if (!replies[0].value("ok", false)) return respond_error(replies[0]);
      auto result = [](const json& r) { return r.value("ok", false) ? r["result"] : json(nullptr); };
      for (size_t i = 1; i < replies.size(); ++i)
        if (!replies[i].value("ok", false))
          log_warning("http: /metrics without its " + std::string(i == 1 ? "catalog" : "health") + " part: " +
                      (replies[i].contains("error") ? replies[i]["error"].value("message", "") : ""));
      respond(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
              render_metrics(result(replies[0]), result(replies[1]), result(replies[2])), {}, false);
    });
  }

  void respond_error(const json& reply) {
    json error = reply.contains("error") && reply["error"].is_object()
                     ? reply["error"]
                     : json{{"code", "internal"}, {"message", "no reply from sqlbakd"}};
    const int status = http_status_for_error(error.value("code", ""));
    respond(static_cast<http::status>(status), "application/json", json{{"error", error}}.dump() + "\n", {},
            false);
  }

  // Sends REQUESTS to the daemon at once; DONE gets their replies, in order,
  // when the last has come.
  void call(std::vector<Request> requests, std::function<void(std::vector<json>)> done) {
    struct Pending {
      std::vector<json> replies;
      size_t left;
      std::function<void(std::vector<json>)> done;
    };
    phase_ = Phase::kHandling;
    auto pending = std::make_shared<Pending>();
    pending->replies.resize(requests.size());
    pending->left = requests.size();
    // The lambda holds the connection: a reply may come after the client left.
    pending->done = [self = shared_from_this(), done = std::move(done)](std::vector<json> replies) {
      if (self->phase_ != Phase::kClosed) done(std::move(replies));
    };
    for (size_t i = 0; i < requests.size(); ++i) {
      auto responder = std::make_shared<Collect>([pending, i](json r) {
        pending->replies[i] = std::move(r);
        if (--pending->left == 0) pending->done(std::move(pending->replies));
      });
      // One bad request must never take the daemon down.
      try {
        shared_->handler(requests[i], responder);
      } catch (const std::exception& e) {
        log_error("http: request '" + requests[i].command + "' failed: " + e.what());
        responder->reply(reply_error(Status::Internal(std::string("internal error: ") + e.what())));
      }
    }
  }

  using Headers = std::vector<std::pair<std::string, std::string>>;

  void log_refused(const std::string& method, const std::string& target, int status, const std::string& why) {
    log_warning("http: refused " + method + " " + printable(target) + " from " + peer_ + ": " +
                std::to_string(status) + ", " + why);
  }

  // An error answer that also ends the connection, logged once.
  void refuse(http::status status, const std::string& code, const std::string& why, const Headers& headers) {
    log_refused(method_, target_, static_cast<int>(status), why);
    respond(status, "application/json", json{{"error", {{"code", code}, {"message", why}}}}.dump() + "\n",
            headers, true);
  }

  void respond(http::status status, const char* content_type, std::string body, const Headers& headers,
               bool close_after) {
    if (phase_ == Phase::kClosed) return;
    const bool keep = keep_alive_ && !close_after && !shared_->closed && id_ != 0;
    response_ = {};
    response_.version(11);
    response_.result(status);
    response_.set(http::field::server, "sqlbakd/" SQLBAK_VERSION);
    response_.set(http::field::content_type, content_type);
    response_.set(http::field::cache_control, "no-store");
    response_.set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : headers) response_.set(name, value);
    response_.keep_alive(keep);
    response_.body() = std::move(body);
    response_.prepare_payload();
    if (head_) response_.body().clear();  // Content-Length stays that of the GET
    phase_ = Phase::kWriting;
    stream_.expires_after(HttpServer::kWriteTimeout);
    http::async_write(stream_, response_, [self = shared_from_this(), keep](beast::error_code ec, size_t) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec) return self->close();
      if (keep) return self->read_request();
      self->linger();
    });
  }

  // Ends the connection without losing the answer just sent: a close with
  // unread input would reset the connection and could discard it, so the
  // rest of the client's input is read and dropped for a moment.
  void linger() {
    phase_ = Phase::kLingering;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (self->phase_ == Phase::kClosed) return;
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
  std::array<char, 4096> scratch_{};
  std::shared_ptr<HttpServer::Shared> shared_;
  uint64_t id_;
  std::string peer_;
  Phase phase_ = Phase::kWaiting;
  std::string method_ = "-", target_ = "-";
  bool keep_alive_ = false;
  bool head_ = false;
};

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

}  // namespace

// ---- pure parts ----

HttpRoute route_http_target(std::string_view target) {
  HttpRoute route;
  if (target.empty() || target.front() != '/') {
    route.kind = HttpRoute::Kind::kBadRequest;
    route.message = "the request target must be a path";
    return route;
  }
  const size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  const std::string_view raw_query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  auto path = percent_decode(raw_path, false);
  if (!path) {
    route.kind = HttpRoute::Kind::kBadRequest;
    route.message = "bad percent-encoding in the path";
    return route;
  }
  route.path = *path;
  // Any "." or ".." segment, a backslash or a NUL, however encoded: refused
  // before anything looks at the path.
  if (path->find('\0') != std::string::npos || path->find('\\') != std::string::npos) {
    route.kind = HttpRoute::Kind::kTraversal;
    return route;
  }
  for (size_t start = 1; start <= path->size();) {
    size_t end = path->find('/', start);
    if (end == std::string::npos) end = path->size();
    const std::string_view segment = std::string_view(*path).substr(start, end - start);
    if (segment == "." || segment == "..") {
      route.kind = HttpRoute::Kind::kTraversal;
      return route;
    }
    start = end + 1;
  }
  if (*path == "/") {
    route.kind = HttpRoute::Kind::kDashboard;
    return route;
  }
  if (*path == "/metrics") {
    route.kind = HttpRoute::Kind::kMetrics;
    return route;
  }
  const ApiEndpoint* endpoint = nullptr;
  for (const ApiEndpoint& e : api_endpoints())
    if (*path == e.path) endpoint = &e;
  if (endpoint == nullptr) {
    route.kind = HttpRoute::Kind::kNotFound;
    return route;
  }

  auto bad = [&route](std::string message) {
    route.kind = HttpRoute::Kind::kBadRequest;
    route.message = std::move(message);
    return route;
  };
  json args = json::object();
  std::string_view rest = raw_query;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view piece = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    auto key = percent_decode(piece.substr(0, eq), true);
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1), true);
    if (!key || !value) return bad("bad percent-encoding in the query");
    const std::string arg = [&]() -> std::string {
      for (const auto& [name, a] : endpoint->params)
        if (name == *key) return a;
      return "";
    }();
    if (arg.empty()) return bad("unknown parameter '" + printable(*key) + "' for " + endpoint->path);
    if (args.contains(arg)) return bad("parameter '" + *key + "' given twice");
    if (arg == "days") {
      int days = 0;
      const char* first = value->data();
      const char* last = first + value->size();
      auto [end, ec] = std::from_chars(first, last, days);
      if (value->empty() || ec != std::errc() || end != last)
        return bad("days must be a whole number of days, not '" + printable(*value) + "'");
      args[arg] = days;
    } else {
      args[arg] = *value;
    }
  }
  route.kind = HttpRoute::Kind::kApi;
  route.api = endpoint->api;
  route.request.command = endpoint->command;
  route.request.args = std::move(args);
  return route;
}

int http_status_for_error(std::string_view code) {
  if (code == "usage" || code == "invalid_argument") return 400;
  if (code == "not_found") return 404;
  return 500;
}

bool token_matches(std::string_view given, std::string_view expected) {
  // Every byte of EXPECTED is looked at whatever GIVEN holds, and the length
  // difference is folded into the same accumulator.
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  volatile unsigned result = diff;
  return result == 0 && !expected.empty();
}

// ---- the server ----

HttpServer::HttpServer(asio::io_context& io, HttpConfig config, RequestHandler handler)
    : io_(io),
      config_(std::move(config)),
      acceptor_(io),
      accept_retry_(io),
      shared_(std::make_shared<Shared>()) {
  shared_->handler = std::move(handler);
}

HttpServer::~HttpServer() { close(); }

Status HttpServer::reload_token() {
  if (config_.token_file.empty()) {
    shared_->token.clear();
    return Status::Ok();
  }
  std::ifstream in(config_.token_file, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "cannot read the HTTP token file " + config_.token_file);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = trim(text.str());
  if (token.empty())
    return Status::InvalidArgument("the HTTP token file " + config_.token_file + " is empty");
  if (token.find_first_of(" \t\r\n") != std::string::npos)
    return Status::InvalidArgument("the HTTP token in " + config_.token_file + " holds white space");
  shared_->token = std::move(token);
  return Status::Ok();
}

Status HttpServer::listen() {
  SQLBAK_RETURN_IF_ERROR(reload_token());
  const std::string& address = config_.listen;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::InvalidArgument("HTTP listen address '" + address + "' is not HOST:PORT");
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, port, tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec)
    return Status::InvalidArgument("cannot resolve HTTP listen address " + address + ": " + ec.message());
  std::string failure = "no address";
  for (const auto& entry : endpoints) {
    const tcp::endpoint ep = entry.endpoint();
    boost::system::error_code e;
    acceptor_.open(ep.protocol(), e);
    if (!e) acceptor_.set_option(asio::socket_base::reuse_address(true), e);
    if (!e && ep.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), e);
    if (!e) acceptor_.bind(ep, e);
    if (!e) acceptor_.listen(asio::socket_base::max_listen_connections, e);
    if (!e) {
      log_info("HTTP: dashboard, JSON API and /metrics on http://" + local_address() + "/" +
               (shared_->token.empty() ? "" : " (bearer token required)"));
      accept();
      return Status::Ok();
    }
    failure = e.message();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }
  return Status::IOError("cannot listen on HTTP address " + address + ": " + failure);
}

std::string HttpServer::local_address() const {
  boost::system::error_code ec;
  const tcp::endpoint ep = acceptor_.local_endpoint(ec);
  return ec ? config_.listen : endpoint_text(ep);
}

void HttpServer::close() {
  shared_->closed = true;
  accept_retry_.cancel();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  // Copy first: closing a connection removes it from `open`.
  std::vector<std::shared_ptr<HttpConnection>> open;
  for (const auto& [id, weak] : shared_->open)
    if (auto c = weak.lock()) open.push_back(std::move(c));
  for (const auto& c : open) c->close();
}

void HttpServer::accept() {
  acceptor_.async_accept([this, shared = shared_](const boost::system::error_code& ec, tcp::socket socket) {
    // Checked before touching `this`: after close() the server may be gone.
    if (ec == asio::error::operation_aborted || shared->closed) return;
    if (ec) {
      // Out of file descriptors, most likely: try again shortly rather than spin.
      log_warning("http: cannot accept a connection: " + ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(250));
      accept_retry_.async_wait([this, shared](const boost::system::error_code& e) {
        if (!e && !shared->closed) accept();
      });
      return;
    }
    boost::system::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    std::string peer_text = peer_ec ? std::string("an unknown peer") : endpoint_text(peer);
    auto& open = shared_->open;
    if (open.size() >= static_cast<size_t>(kMaxConnections)) {
      // Make room: the oldest connection that is not in the middle of a request.
      for (const auto& [id, weak] : open) {
        auto c = weak.lock();
        if (c && c->evictable()) {
          c->evict();
          break;
        }
      }
    }
    if (open.size() >= static_cast<size_t>(kMaxConnections)) {
      if (shared_->refusing < kMaxRefusing)
        std::make_shared<HttpConnection>(std::move(socket), shared_, 0, std::move(peer_text))->refuse_busy();
      // else: the socket closes as it goes out of scope, unanswered.
    } else {
      const uint64_t id = shared_->next_id++;
      auto c = std::make_shared<HttpConnection>(std::move(socket), shared_, id, std::move(peer_text));
      open[id] = c;
      c->start();
    }
    accept();
  });
}

}  // namespace sqlbak::daemon
