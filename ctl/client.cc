#include "ctl/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sqlbak::ctl {

using nlohmann::json;

std::optional<json> call_daemon(const std::string& path, const Request& request,
                                const std::function<void(const json&)>& on_event, RemoteError* error) {
  auto unreachable = [&](const std::string& why) {
    error->unreachable = true;
    error->status = Status::IOError("cannot reach sqlbakd at " + path + ": " + why +
                                    " (is it running? `sqlbakctl --offline -c FILE` works without it)");
    return std::nullopt;
  };
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return unreachable("socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unreachable(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return unreachable(std::strerror(errno));

  const std::string frame = encode_frame(encode_request(request));
  int send_error = 0;
  for (size_t sent = 0; sent < frame.size();) {
    ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // The daemon may have answered (a refusal) and closed before reading: read that answer.
    if (n < 0) {
      send_error = errno;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  FrameDecoder decoder;
  char buf[65536];
  for (;;) {
    auto message = decoder.next();
    if (!message.ok()) {
      error->status = message.status().WithContext("reply from sqlbakd");
      return std::nullopt;
    }
    if (message->has_value()) {
      const json& m = **message;
      if (m.contains("event")) {
        if (on_event) on_event(m);
        continue;
      }
      if (m.value("ok", false)) return m.contains("result") ? m["result"] : json::object();
      const json& e = m.value("error", json::object());
      ErrorCode code = ErrorCode::kInternal;
      const std::string name = e.value("code", std::string("internal"));
      for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c)
        if (name == code_name(static_cast<ErrorCode>(c))) code = static_cast<ErrorCode>(c);
      error->status = Status(code, e.value("message", std::string("sqlbakd reported an error")));
      return std::nullopt;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (send_error != 0) return unreachable(std::string("sending: ") + std::strerror(send_error));
      error->status = Status::IOError("sqlbakd closed the connection before replying");
      return std::nullopt;
    }
    decoder.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace sqlbak::ctl
