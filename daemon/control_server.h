// ControlServer: the Unix control socket of sqlbakd (docs/PROTOCOL.md).
//
// The socket file is created mode 0660, owned by `socket_group` when that
// group exists; a peer must also pass a credentials check (root, the daemon's
// own user, or a member of the group). Each connection carries one request:
// the server reads one JSON line (within 10 s, at most kMaxFrameBytes), hands it
// to the Daemon, writes its events and reply, and closes. At most
// kMaxConnections are open at once; more are refused with an error.
// Loop thread only.
#pragma once

#include <utility>  // Boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <atomic>
#include <memory>
#include <string>

#include "lib/status.h"

namespace sqlbak::daemon {

class Daemon;

class ControlServer {
 public:
  static constexpr int kMaxConnections = 64;

  ControlServer(boost::asio::io_context& io, Daemon& daemon);
  ~ControlServer();
  // Binds PATH (removing a stale socket left by a dead daemon; refusing when
  // another daemon answers on it) and starts accepting.
  Status listen(const std::string& path, const std::string& group);
  void close();
  int open_connections() const { return *connections_; }

 private:
  void accept();

  boost::asio::io_context& io_;
  Daemon& daemon_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  gid_t group_ = static_cast<gid_t>(-1);
  // Atomic: a connection may be released last by a worker thread that answered it.
  std::shared_ptr<std::atomic<int>> connections_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace sqlbak::daemon
