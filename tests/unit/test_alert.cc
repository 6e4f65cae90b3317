#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "lib/alert.h"
#include "lib/alert_delivery.h"
#include "tests/unit/testutil.h"

using namespace std::chrono_literals;
using namespace sqlbak;

namespace {

constexpr int64_t kT0 = 1795625412000;  // 2026-11-25T16:50:12Z, a Wednesday
constexpr int64_t kMinute = 60'000;

AlertEvent failure(std::string db = "shop",
                   std::string error = "cannot open /srv/app/shop.db: No such file") {
  AlertEvent e = make_failure_alert("backup", std::move(db), "local", std::move(error), kT0);
  e.host = "db1.example.com";
  return e;
}

AlertEmailOptions mail_options() {
  return {.from = "sqlbak <sqlbak@example.com>",
          .to = {"ops@example.com", "oncall@example.com"},
          .date_ms = kT0,
          .unique = "abc123.0011223344556677.sqlbak"};
}

std::vector<std::string> split_crlf(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t at = s.find("\r\n"); at != std::string::npos; at = s.find("\r\n", start)) {
    lines.push_back(s.substr(start, at - start));
    start = at + 2;
  }
  lines.push_back(s.substr(start));
  return lines;
}

// Header name -> unfolded value of the message's header block.
std::map<std::string, std::string> headers_of(const std::string& message) {
  const std::string block = message.substr(0, message.find("\r\n\r\n"));
  std::map<std::string, std::string> headers;
  std::string last;
  for (const std::string& line : split_crlf(block)) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      headers[last] += line;
      continue;
    }
    const size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    last = line.substr(0, colon);
    headers[last] = line.substr(colon + 2);
  }
  return headers;
}

std::string qp_decode(const std::string& qp) {
  std::string out;
  for (size_t i = 0; i < qp.size(); ++i) {
    if (qp[i] == '=' && i + 2 < qp.size() && qp[i + 1] == '\r' && qp[i + 2] == '\n') {
      i += 2;
    } else if (qp[i] == '=' && i + 2 < qp.size()) {
      out += static_cast<char>(std::stoi(qp.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (qp[i] == '\r' && i + 1 < qp.size() && qp[i + 1] == '\n') {
      out += '\n';
      ++i;
    } else {
      out += qp[i];
    }
  }
  return out;
}

std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = acc << 6 | static_cast<uint32_t>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xFF);
    }
  }
  return out;
}

// The decoded bodies of the parts of a multipart message, by content type.
std::map<std::string, std::string> parts_of(const std::string& message) {
  const auto headers = headers_of(message);
  const std::string ct = headers.at("Content-Type");
  const size_t b = ct.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  const std::string boundary = ct.substr(b + 10, ct.find('"', b + 10) - b - 10);
  std::map<std::string, std::string> parts;
  const std::string delimiter = "\r\n--" + boundary;
  size_t at = message.find(delimiter);
  while (at != std::string::npos) {
    const size_t start = at + delimiter.size();
    if (message.compare(start, 2, "--") == 0) break;  // the close delimiter
    const size_t next = message.find(delimiter, start);
    REQUIRE(next != std::string::npos);
    const std::string part = message.substr(start + 2, next - start - 2);
    const size_t body_at = part.find("\r\n\r\n");
    const std::string part_headers = part.substr(0, body_at);
    CHECK(part_headers.find("charset=utf-8") != std::string::npos);
    CHECK(part_headers.find("Content-Transfer-Encoding: quoted-printable") != std::string::npos);
    const std::string type = part_headers.substr(14, part_headers.find(';') - 14);
    parts[type] = qp_decode(part.substr(body_at + 4));
    at = next;
  }
  return parts;
}

// A loopback TCP port that refuses connections: bound, never listening.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// An executor that keeps the tasks instead of running them.
struct QueueExecutor {
  std::vector<std::function<void()>> tasks;
  AlertDispatcher::Executor executor() {
    return [this](std::function<void()> task) { tasks.push_back(std::move(task)); };
  }
};

}  // namespace

TEST_CASE("the email has the RFC 5322 headers and a text and an HTML part", "[alert]") {
  const std::string message = render_alert_email(failure(), mail_options());
  const auto h = headers_of(message);
  CHECK(h.at("Date") == "Wed, 25 Nov 2026 16:50:12 +0000");
  CHECK(h.at("Message-ID") == "<abc123.0011223344556677.sqlbak@db1.example.com>");
  CHECK(h.at("From") == "sqlbak <sqlbak@example.com>");
  CHECK(h.at("To") == "ops@example.com, oncall@example.com");
  CHECK(h.at("MIME-Version") == "1.0");
  CHECK(h.at("Auto-Submitted") == "auto-generated");
  CHECK(h.at("X-Sqlbak-Event") == "failure");
  CHECK(h.at("X-Sqlbak-Severity") == "critical");
  CHECK(h.at("Content-Type").rfind("multipart/alternative;", 0) == 0);

  // The subject names host, database, target, what happened and the error.
  const std::string subject = h.at("Subject");
  CHECK(subject.find("FAILED") != std::string::npos);
  CHECK(subject.find("db1.example.com") != std::string::npos);
  CHECK(subject.find("shop") != std::string::npos);
  CHECK(subject.find("local") != std::string::npos);
  CHECK(subject.find("No such file") != std::string::npos);

  // CRLF everywhere, no line over 78 characters.
  for (size_t i = 0; i < message.size(); ++i)
    if (message[i] == '\n') REQUIRE((i > 0 && message[i - 1] == '\r'));
  for (const std::string& line : split_crlf(message)) CHECK(line.size() <= 78);

  const auto parts = parts_of(message);
  REQUIRE(parts.size() == 2);
  const std::string& text = parts.at("text/plain");
  const std::string& html = parts.at("text/html");
  CHECK(text == render_alert_text(failure()));
  CHECK(html == render_alert_html(failure()));
  for (const std::string* body : {&text, &html}) {
    CHECK(body->find("db1.example.com") != std::string::npos);
    CHECK(body->find("shop") != std::string::npos);
    CHECK(body->find("cannot open /srv/app/shop.db: No such file") != std::string::npos);
    CHECK(body->find("sqlbakctl backup shop --wait") != std::string::npos);  // what to do next
    CHECK(body->find("journalctl -u sqlbakd SQLBAK_DB=shop") != std::string::npos);
  }
  CHECK(html.find("<html>") != std::string::npos);
}

TEST_CASE("every data string is HTML-escaped in the HTML part", "[alert]") {
  AlertEvent e = failure("<script>alert(1)</script>", "bad \"quote\" & <b>tag</b> 'x'");
  e.target = "<img src=x onerror=alert(2)>";
  const std::string html = render_alert_html(e);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("<b>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("bad &quot;quote&quot; &amp; &lt;b&gt;tag&lt;/b&gt; &#39;x&#39;") != std::string::npos);
  // and in the whole message, after quoted-printable decoding
  const auto parts = parts_of(render_alert_email(e, mail_options()));
  CHECK(parts.at("text/html").find("<script>") == std::string::npos);
  CHECK(parts.at("text/plain").find("<script>alert(1)</script>") != std::string::npos);
  CHECK(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}

TEST_CASE("non-ASCII and hostile text stays inside its header and part", "[alert]") {
  AlertEvent e =
      failure("shop", "Fehler: Datei „shop.db“ nicht gefunden — très grave\r\nBcc: victim@example.com");
  e.details = "ligne 1\nligne 2 with trailing space \n=equals=";
  const std::string message = render_alert_email(e, mail_options());
  const auto h = headers_of(message);
  CHECK(h.count("Bcc") == 0);  // the line break in the error did not open a header
  const std::string subject = h.at("Subject");
  CHECK(subject.find("=?UTF-8?B?") == 0);
  // Decode the encoded-words back.
  std::string decoded;
  for (size_t at = subject.find("=?UTF-8?B?"); at != std::string::npos;
       at = subject.find("=?UTF-8?B?", at + 1))
    decoded += base64_decode(subject.substr(at + 10, subject.find("?=", at + 10) - at - 10));
  CHECK(decoded == alert_summary(e));
  CHECK(decoded.find("„shop.db“") != std::string::npos);
  for (const std::string& line : split_crlf(message)) CHECK(line.size() <= 78);
  const auto parts = parts_of(message);
  CHECK(parts.at("text/plain").find("très grave") != std::string::npos);
  CHECK(parts.at("text/plain").find("ligne 2 with trailing space \n=equals=") != std::string::npos);

  CHECK(valid_utf8("ok \xC3\xA9") == "ok \xC3\xA9");
  CHECK(valid_utf8("bad \xC3(") == "bad \xEF\xBF\xBD(");
  CHECK(valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(quoted_printable("a=b \nc\t\n") == "a=3Db=20\r\nc=09\r\n");
  const std::string long_line(200, 'x');
  for (const std::string& line : split_crlf(quoted_printable(long_line + "\n"))) CHECK(line.size() <= 76);
  CHECK(qp_decode(quoted_printable(long_line + "\n")) == long_line + "\n");
  CHECK(encode_header_text("short subject", 7) == "short subject");
  CHECK(smtp_address("Ops Team <ops@example.com>") == "ops@example.com");
  CHECK(smtp_address(" ops@example.com ") == "ops@example.com");
  CHECK(rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
}

TEST_CASE("each event says what happened and what to do next", "[alert]") {
  AlertEvent health =
      make_health_alert("shop", "offsite", "OK", "CRITICAL", "target offsite unreachable", kT0);
  health.host = "h";
  CHECK(health.severity == AlertSeverity::kCritical);
  CHECK(alert_summary(health) ==
        "[sqlbak] CRITICAL: health of shop (target offsite) on h (was OK): target "
        "offsite unreachable");
  CHECK(alert_next_steps(health).front() == "sqlbakctl health shop");

  AlertEvent back = make_health_alert("shop", "", "WARNING", "OK", "", kT0);
  back.host = "h";
  CHECK(back.severity == AlertSeverity::kOk);
  CHECK(alert_summary(back) == "[sqlbak] OK: health of shop on h is back to OK (was WARNING)");

  AlertEvent ok = make_success_alert("shop", "local", "20261125T165012Z-abcdef", "1.2 MiB in 0.4 s", kT0);
  ok.host = "h";
  CHECK(alert_summary(ok) == "[sqlbak] OK: backup of shop (target local) on h: 20261125T165012Z-abcdef");
  CHECK(alert_next_steps(ok) ==
        std::vector<std::string>{"sqlbakctl show 20261125T165012Z-abcdef --target local"});

  AlertEvent verify = make_failure_alert("verify", "shop", "local", "object 3 checksum mismatch", kT0, "B1");
  CHECK(alert_next_steps(verify).front() == "sqlbakctl verify B1 --target local");
  AlertEvent rotate = make_failure_alert("rotate", "shop", "local", "EIO", kT0);
  CHECK(alert_next_steps(rotate).front() == "sqlbakctl rotate shop --dry-run");
  AlertEvent odd = make_failure_alert("backup", "it's", "a b", "x", kT0);
  CHECK(alert_next_steps(odd)[1] == "sqlbakctl backup 'it'\\''s' --wait");

  AlertEvent test = make_test_alert("h", kT0);
  CHECK(alert_summary(test) == "[sqlbak] test alert from h");
  CHECK(render_alert_text(test).find("sqlbakctl alert test") != std::string::npos);
}

TEST_CASE("the webhook document carries every field", "[alert]") {
  AlertEvent e = failure();
  e.backup_id = "20261125T165012Z-abcdef";
  e.folded = 9;
  e.folded_since_ms = kT0 - 30 * kMinute;
  const auto doc = nlohmann::json::parse(render_alert_webhook(e));
  CHECK(doc.at("version") == 1);
  CHECK(doc.at("event") == "failure");
  CHECK(doc.at("severity") == "critical");
  CHECK(doc.at("host") == "db1.example.com");
  CHECK(doc.at("database") == "shop");
  CHECK(doc.at("target") == "local");
  CHECK(doc.at("backup_id") == "20261125T165012Z-abcdef");
  CHECK(doc.at("job") == "backup");
  CHECK(doc.at("error") == "cannot open /srv/app/shop.db: No such file");
  CHECK(doc.at("details").is_null());
  CHECK(doc.at("health").is_null());
  CHECK(doc.at("time") == "2026-11-25T16:50:12Z");
  CHECK(doc.at("time_unix_ms") == kT0);
  CHECK(doc.at("folded") == 9);
  CHECK(doc.at("folded_since") == "2026-11-25T16:20:12Z");
  CHECK(doc.at("summary") == alert_summary(e));
  CHECK(doc.at("summary").get<std::string>().find("(+9 folded)") != std::string::npos);
  CHECK(doc.at("message").get<std::string>().find("failed on host db1.example.com") != std::string::npos);
  CHECK(doc.at("next_steps").at(0) == "sqlbakctl status");

  AlertEvent h = make_health_alert("shop", "", "OK", "WARNING", "last backup 50h old", kT0);
  const auto hdoc = nlohmann::json::parse(render_alert_webhook(h));
  CHECK(hdoc.at("health") == nlohmann::json({{"old", "OK"}, {"new", "WARNING"}}));
  CHECK(hdoc.at("severity") == "warning");
  CHECK(hdoc.at("target").is_null());
  CHECK(hdoc.at("folded_since").is_null());
  // Invalid UTF-8 does not break the document.
  CHECK_NOTHROW(nlohmann::json::parse(render_alert_webhook(failure("shop", "bad \xFF byte"))));
}

TEST_CASE("identical alerts within repeat_after are folded, the count goes with the next", "[alert]") {
  AlertFolder folder(1h);
  auto d = folder.offer(failure(), kT0);
  CHECK(d.send);
  CHECK(d.folded == 0);
  for (int i = 1; i <= 9; ++i) CHECK_FALSE(folder.offer(failure(), kT0 + i * kMinute).send);
  CHECK(folder.pending_folded() == 9);
  // Another error, database or event is not the same alert.
  CHECK(folder.offer(failure("shop", "disk full"), kT0 + 10 * kMinute).send);
  CHECK(folder.offer(failure("books"), kT0 + 10 * kMinute).send);
  AlertEvent verify = failure();
  verify.job = "verify";
  CHECK(folder.offer(verify, kT0 + 10 * kMinute).send);
  // Test alerts are never folded.
  CHECK(folder.offer(make_test_alert("h", kT0), kT0).send);
  CHECK(folder.offer(make_test_alert("h", kT0), kT0).send);
  // Just before the window ends: still folded.
  CHECK_FALSE(folder.offer(failure(), kT0 + 60 * kMinute - 1).send);
  // After it: sent, with the count and the time of the previous one sent.
  d = folder.offer(failure(), kT0 + 61 * kMinute);
  CHECK(d.send);
  CHECK(d.folded == 10);
  CHECK(d.folded_since_ms == kT0);
  CHECK(folder.pending_folded() == 0);
  // A new window began at the last one sent.
  CHECK_FALSE(folder.offer(failure(), kT0 + 62 * kMinute).send);
  d = folder.offer(failure(), kT0 + 122 * kMinute);
  CHECK(d.send);
  CHECK(d.folded == 1);
  // Health going back to OK is not the same alert as going to WARNING.
  AlertEvent warn = make_health_alert("shop", "", "OK", "WARNING", "old", kT0);
  AlertEvent ok = make_health_alert("shop", "", "WARNING", "OK", "old", kT0);
  CHECK(folder.offer(warn, kT0).send);
  CHECK(folder.offer(ok, kT0 + 1).send);
  CHECK_FALSE(folder.offer(warn, kT0 + 2).send);
  // Windows that passed and folded nothing are forgotten.
  folder.offer(failure("other"), kT0 + 1000 * kMinute);
  CHECK(folder.tracked() == 2);  // "other", and warn with its folded count

  AlertFolder never(0s);
  CHECK(never.offer(failure(), kT0).send);
  CHECK(never.offer(failure(), kT0).send);
}

TEST_CASE("the dispatcher sends each event to the channels whose on: lists it", "[alert]") {
  AlertsConfig config;
  config.email.emplace();
  config.email->url = "smtp://127.0.0.1:1";
  config.email->from = "a@b";
  config.email->to = {"c@d"};
  config.email->on = {"failure"};
  config.webhook.emplace();
  config.webhook->url = "http://127.0.0.1:1/hook";
  config.webhook->on = {"failure", "health"};
  QueueExecutor q;
  AlertDispatcher dispatcher(config, "h", q.executor(), nullptr);

  CHECK(dispatcher.raise(failure(), kT0) == 2);
  CHECK(dispatcher.raise(make_success_alert("shop", "local", "B", "", kT0), kT0) == 0);
  CHECK(dispatcher.raise(make_health_alert("shop", "", "OK", "WARNING", "x", kT0), kT0) == 1);
  CHECK(dispatcher.raise(make_test_alert("", kT0), kT0) == 2);
  // Folded: the same failure again within the hour starts nothing.
  CHECK(dispatcher.raise(failure(), kT0 + kMinute) == 0);
  CHECK(dispatcher.folded_pending() == 1);
  CHECK(q.tasks.size() == 5);
  const auto status = dispatcher.channel_status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].channel == "email");
  CHECK(status[0].pending == 2);
  CHECK(status[1].channel == "webhook");
  CHECK(status[1].pending == 3);

  // Success only when asked for.
  config.email->on = {"failure", "success"};
  dispatcher.reconfigure(config);
  CHECK(dispatcher.raise(make_success_alert("shop", "local", "B", "", kT0), kT0) == 1);
  CHECK(dispatcher.channel_status()[0].pending == 3);  // counters kept over the reload

  // A queue that never drains: past the limit, alerts are dropped, not queued.
  int started = 0;
  for (int i = 0; i < 2 * AlertDispatcher::kMaxPendingPerChannel; ++i)
    started += dispatcher.raise(failure("db" + std::to_string(i)), kT0);
  CHECK(started == 2 * AlertDispatcher::kMaxPendingPerChannel - 3 - 3);
  CHECK(dispatcher.channel_status()[1].dropped > 0);

  dispatcher.shutdown();
  CHECK(dispatcher.raise(failure("late"), kT0) == 0);
  for (auto& task : q.tasks) task();  // queued before shutdown: no-ops now
}

TEST_CASE("a failing channel is retried, logged and shown without its secrets", "[alert]") {
  test::TempDir dir;
  test::write_file(dir / "token", "s3cr3t-t0ken\n");
  RefusingPort port;
  AlertsConfig config;
  config.webhook = WebhookAlertConfig{
      .url = "http://user:pa55w0rd@127.0.0.1:" + std::to_string(port.port()) + "/hook?key=qu3ry",
      .token_file = dir / "token",
      .on = {"failure"}};
  std::vector<std::string> log;
  std::mutex log_mu;
  AlertDeliveryOptions options;
  options.attempts = 3;
  options.first_backoff = 10ms;
  AlertDispatcher dispatcher(
      config, "h", [](std::function<void()> task) { task(); },  // inline: synchronous for the test
      [&](const std::string& m) {
        std::lock_guard<std::mutex> lock(log_mu);
        log.push_back(m);
      },
      options);
  CHECK(dispatcher.raise(failure(), kT0) == 1);
  REQUIRE(log.size() == 1);
  const std::string url = "http://127.0.0.1:" + std::to_string(port.port()) + "/hook";
  INFO(log[0]);
  CHECK(log[0].find("webhook " + url + ": not delivered after 3 attempts") != std::string::npos);
  CHECK(log[0].find("cannot connect") != std::string::npos);
  CHECK(log[0].find("shop") != std::string::npos);
  for (const char* secret : {"s3cr3t-t0ken", "pa55w0rd", "qu3ry"})
    CHECK(log[0].find(secret) == std::string::npos);
  const auto status = dispatcher.channel_status();
  REQUIRE(status.size() == 1);
  CHECK(status[0].url == url);
  CHECK(status[0].failed == 1);
  CHECK(status[0].consecutive_failures == 1);
  CHECK(status[0].pending == 0);
  CHECK(status[0].last_failure_ms > 0);
  CHECK(status[0].last_success_ms == 0);
  CHECK(status[0].last_error.find("s3cr3t") == std::string::npos);

  // The synchronous form reports the same, with the attempts made.
  const AlertChannelResult r = send_webhook_alert(*config.webhook, failure(), options);
  CHECK_FALSE(r.ok);
  CHECK(r.attempts == 3);
  CHECK(r.channel == "webhook");
  CHECK(describe(r).find(url) != std::string::npos);

  // An unreadable token file is reported, not retried.
  config.webhook->token_file = dir / "missing";
  const AlertChannelResult missing = send_webhook_alert(*config.webhook, failure(), options);
  CHECK_FALSE(missing.ok);
  CHECK(missing.attempts == 1);
  CHECK(missing.error.find("token_file") != std::string::npos);
}

TEST_CASE("URLs are shown without credentials or query", "[alert]") {
  CHECK(redact_url("smtp://user:pw@mail.example.com:587") == "smtp://mail.example.com:587");
  CHECK(redact_url("https://hooks.example.com/a/b?token=x#frag") == "https://hooks.example.com/a/b");
  CHECK(redact_url("smtps://mail.example.com") == "smtps://mail.example.com");
  CHECK(redact_url("http://a@b@host/p") == "http://host/p");
  CHECK(parse_alert_kind("health") == AlertKind::kHealth);
  CHECK_FALSE(parse_alert_kind("nope"));
}

TEST_CASE("shutdown ends waiting retries at once and silences the log", "[alert]") {
  RefusingPort port;
  AlertsConfig config;
  config.webhook.emplace();
  config.webhook->url = "http://127.0.0.1:" + std::to_string(port.port()) + "/hook";
  config.webhook->on = {"failure"};
  AlertDeliveryOptions options;
  options.attempts = 5;
  options.first_backoff = 60s;  // the delivery waits here after its first try
  std::vector<std::thread> threads;
  std::atomic<int> log_lines{0};
  {
    AlertDispatcher dispatcher(
        config, "h", [&](std::function<void()> task) { threads.emplace_back(std::move(task)); },
        [&](const std::string&) { ++log_lines; }, options);
    CHECK(dispatcher.raise(failure(), kT0) == 1);
    std::this_thread::sleep_for(200ms);  // first try refused, now in its backoff
    CHECK(dispatcher.channel_status()[0].pending == 1);
    const auto start = std::chrono::steady_clock::now();
    dispatcher.shutdown();
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  }
  for (std::thread& t : threads) t.join();
  CHECK(log_lines == 0);
}
