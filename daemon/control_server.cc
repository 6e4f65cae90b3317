#include "daemon/control_server.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <vector>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "lib/protocol.h"

namespace sqlbak::daemon {
namespace {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using nlohmann::json;

std::string describe_peer(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "an unknown peer";
  return "uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) + ")";
}

bool peer_allowed(int fd, gid_t group) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
  if (group == static_cast<gid_t>(-1)) return false;
  if (cred.gid == group) return true;
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(cred.uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    ::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n);
  }
  for (int i = 0; i < n; ++i)
    if (groups[static_cast<size_t>(i)] == group) return true;
  return false;
}

// A socket peer names databases and targets, and never a path: a name that
// could step out of a repository ("../..", "a/b") is refused here, before any
// command sees it. (`list` with database "../../.." would otherwise walk
// directories outside the target.) Names in the configuration match
// [A-Za-z0-9_.-]+, so no configured name is refused.
bool is_plain_name(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 255) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_names(const Request& request) {
  auto bad = [](const char* what, const std::string& v) {
    return Status::InvalidArgument(std::string("invalid ") + what + " name " + json(v).dump() +
                                   ": names match [A-Za-z0-9_.-]+");
  };
  for (const char* key : {"database", "target"}) {
    const std::string v = arg_text(request.args, key);
    if (!v.empty() && !is_plain_name(v)) return bad(key, v);
  }
  for (const std::string& v : arg_strings(request.args, "databases"))
    if (!v.empty() && !is_plain_name(v)) return bad("database", v);
  return Status::Ok();
}

class Connection : public Responder, public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream::socket socket, Daemon& daemon, std::shared_ptr<std::atomic<int>> counter, std::string peer)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), daemon_(daemon),
        counter_(std::move(counter)), peer_(std::move(peer)) {
    ++*counter_;
  }
  ~Connection() override { --*counter_; }

  void start(bool allowed, bool over_limit) {
    if (!allowed) {
      log_warning("refused a control connection from " + peer_);
      reply(reply_error(Status(ErrorCode::kPermissionDenied,
                               "permission denied: only root, the sqlbak user and members of the "
                               "socket group may use the control socket")));
      return;
    }
    if (over_limit) {
      reply(reply_error(Status::Busy("too many control connections; try again")));
      return;
    }
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && !self->got_request_) self->socket_.close();
    });
    read();
  }

  void event(const json& e) override {
    json tagged = e;
    tagged["id"] = request_id_;
    write(encode_frame(tagged), false);
  }
  void reply(const json& r) override {
    if (replied_) return;
    replied_ = true;
    timer_.cancel();
    json tagged = r;
    tagged["id"] = request_id_;
    write(encode_frame(tagged), true);
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                    const boost::system::error_code& ec, size_t n) {
      if (ec) {  // the client went away, or the timer closed the socket
        self->timer_.cancel();  // the timer's handler holds the connection: let it go now
        return;
      }
      self->decoder_.feed(std::string_view(self->buf_.data(), n));
      auto message = self->decoder_.next();
      if (!message.ok()) return self->reply(reply_error(message.status()));
      if (!message->has_value()) return self->read();
      self->got_request_ = true;
      self->timer_.cancel();
      auto request = decode_request(**message);
      if (!request.ok()) return self->reply(reply_error(request.status()));
      self->request_id_ = request->id;
      if (Status st = check_names(*request); !st.ok()) {
        log_warning("refused a control request '" + request->command + "' from " + self->peer_ + ": " +
                    st.message());
        return self->reply(reply_error(st));
      }
      // One bad request must never take the daemon down.
      try {
        self->daemon_.handle(*request, self);
      } catch (const std::exception& e) {
        log_error(std::string("control request '") + request->command + "' failed: " + e.what());
        self->reply(reply_error(Status::Internal(std::string("internal error: ") + e.what())));
      }
      self->watch_for_hangup();
    });
  }

  // After the request, a read only tells us when the client hangs up.
  void watch_for_hangup() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                    const boost::system::error_code& ec, size_t) {
      if (ec) {
        self->closed_ = true;
        return;
      }
      self->watch_for_hangup();
    });
  }

  void write(std::string frame, bool last) {
    if (closed_) return;
    queue_.push_back({std::move(frame), last});
    if (queue_.size() == 1) write_next();
  }

  void write_next() {
    if (queue_.empty()) return;
    asio::async_write(socket_, asio::buffer(queue_.front().first),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        const bool last = self->queue_.front().second;
                        self->queue_.pop_front();
                        if (ec || last) {
                          boost::system::error_code ignored;
                          self->socket_.shutdown(stream::socket::shutdown_both, ignored);
                          self->socket_.close(ignored);
                          self->closed_ = true;
                          self->queue_.clear();
                          return;
                        }
                        self->write_next();
                      });
  }

  stream::socket socket_;
  asio::steady_timer timer_;
  Daemon& daemon_;
  std::shared_ptr<std::atomic<int>> counter_;
  std::string peer_;  // "uid 1000 (pid 42)", for the log
  FrameDecoder decoder_;
  std::array<char, 8192> buf_{};
  std::deque<std::pair<std::string, bool>> queue_;
  int64_t request_id_ = 0;
  bool got_request_ = false;
  bool replied_ = false;
  bool closed_ = false;
};

}  // namespace

ControlServer::ControlServer(asio::io_context& io, Daemon& daemon)
    : io_(io), daemon_(daemon), acceptor_(io) {}

ControlServer::~ControlServer() { close(); }

Status ControlServer::listen(const std::string& path, const std::string& group) {
  path_ = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status::InvalidArgument("control socket path " + path + " exists and is not a socket");
    stream::socket probe(io_);
    boost::system::error_code ec;
    probe.connect(stream::endpoint(path), ec);
    if (!ec) return Status::Locked("another sqlbakd is already listening on " + path);
    ::unlink(path.c_str());  // stale, from a daemon that died
  }
  if (!group.empty()) {
    if (const ::group* g = ::getgrnam(group.c_str())) {
      group_ = g->gr_gid;
    } else {
      log_warning("socket group '" + group + "' does not exist; only root and the daemon's user "
                  "may use the control socket");
    }
  }
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  const mode_t old_mask = ::umask(0117);  // the socket file is created 0660
  if (!ec) acceptor_.bind(stream::endpoint(path), ec);
  ::umask(old_mask);
  if (ec) return Status::IOError("cannot create control socket " + path + ": " + ec.message());
  if (group_ != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), group_) != 0)
    log_warning("cannot give control socket " + path + " to group '" + group + "': " + std::strerror(errno));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on control socket " + path + ": " + ec.message());
  accept();
  return Status::Ok();
}

void ControlServer::close() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ec;
  acceptor_.close(ec);
  ::unlink(path_.c_str());
}

void ControlServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      const bool allowed = peer_allowed(socket.native_handle(), group_);
      const bool over = *connections_ >= kMaxConnections;
      std::string peer = describe_peer(socket.native_handle());
      std::make_shared<Connection>(std::move(socket), daemon_, connections_, std::move(peer))
          ->start(allowed, over);
    }
    accept();
  });
}

}  // namespace sqlbak::daemon
