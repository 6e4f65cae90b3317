#include "lib/alert_delivery.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "lib/host_name.h"

namespace sqlbak {
namespace {

constexpr size_t kMaxResponseBytes = 2048;
constexpr size_t kMaxResponseShown = 200;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool cancelled(const AlertDeliveryOptions& o) { return o.cancel != nullptr && o.cancel->load(); }

// Waits DELAY, or less when the delivery is cancelled meanwhile.
void backoff(std::chrono::milliseconds delay, const AlertDeliveryOptions& o) {
  const auto deadline = std::chrono::steady_clock::now() + delay;
  while (!cancelled(o)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(50)));
  }
}

void ensure_curl_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The result of one try.
struct Attempt {
  bool ok = false;
  bool retry = false;  // the error may go away by itself
  std::string error;
};

// The content of a secret file: its first line, without the line end (and,
// for tokens, without surrounding blanks).
std::optional<std::string> read_secret(const std::string& path, bool trim, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (trim) {
    const size_t b = line.find_first_not_of(" \t");
    const size_t e = line.find_last_not_of(" \t");
    line = b == std::string::npos ? "" : line.substr(b, e - b + 1);
  }
  if (line.empty()) {
    *error = path + " is empty";
    return std::nullopt;
  }
  return line;
}

// MESSAGE with every SECRET replaced: a server may echo what it was sent.
std::string scrub(std::string message, const std::string& secret) {
  if (secret.empty()) return message;
  for (size_t at = message.find(secret); at != std::string::npos; at = message.find(secret, at + 3))
    message.replace(at, secret.size(), "***");
  return message;
}

// Text from the outside (a server's answer) fit for one log line.
std::string printable_line(std::string_view text, size_t max) {
  std::string out = valid_utf8(text.substr(0, std::min(text.size(), max * 4)));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  const size_t end = out.find_last_not_of(' ');
  out.resize(end == std::string::npos ? 0 : end + 1);
  if (out.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

void slist_append(SlistPtr& list, const std::string& s) {
  curl_slist* l = curl_slist_append(list.get(), s.c_str());
  if (l != nullptr) {
    (void)list.release();
    list.reset(l);
  }
}

int on_progress(void* options, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return cancelled(*static_cast<const AlertDeliveryOptions*>(options)) ? 1 : 0;
}

// Options every transfer shares: bounded time, no signals (we run in
// threads), cancellation, and the CA bundle of SSL_CERT_FILE when set.
void set_common_options(CURL* h, const AlertDeliveryOptions& o, char* errbuf) {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<AlertDeliveryOptions*>(&o));
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (const char* ca = std::getenv("SSL_CERT_FILE"); ca != nullptr && *ca != '\0')
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
}

// Errors that trying again will not fix.
bool permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_LOGIN_DENIED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_REMOTE_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

std::string curl_error(CURLcode rc, const char* errbuf, bool starttls) {
  const std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_USE_SSL_FAILED:
      return starttls ? "the server does not offer STARTTLS, which `starttls: true` requires (" + detail + ")"
                      : "TLS could not be started (" + detail + ")";
    case CURLE_LOGIN_DENIED:
      return "login denied (check `username` and `password_file`): " + detail;
    case CURLE_PEER_FAILED_VERIFICATION:
      return "the server's TLS certificate is not trusted: " + detail;
    case CURLE_ABORTED_BY_CALLBACK:
      return "cancelled: sqlbak is stopping";
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out: " + detail;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot connect: " + detail;
    default:
      return detail;
  }
}

// The random part of a Message-ID / MIME boundary.
std::string unique_token(int64_t now_ms) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string t;
  for (uint64_t v = static_cast<uint64_t>(now_ms); v > 0; v /= 36) t.insert(t.begin(), kDigits[v % 36]);
  std::random_device rd;
  const uint64_t r = static_cast<uint64_t>(rd()) << 32 | rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
  return (t.empty() ? "0" : t) + "." + hex + ".sqlbak";
}

// The URL with the EHLO name as its path, when it has no path: libcurl says
// EHLO with the path of the URL.
std::string url_with_ehlo_name(const std::string& url, const std::string& host) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || host.empty()) return url;
  const size_t slash = url.find('/', scheme_end + 3);
  if (slash == std::string::npos) return url + "/" + host;
  if (slash + 1 == url.size()) return url + host;
  return url;
}

struct UploadSource {
  const std::string* data;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* src = static_cast<UploadSource*>(userdata);
  const size_t n = std::min(size * nitems, src->data->size() - src->offset);
  std::memcpy(buffer, src->data->data() + src->offset, n);
  src->offset += n;
  return n;
}

size_t collect_response(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* out = static_cast<std::string*>(userdata);
  const size_t n = size * nmemb;
  if (out->size() < kMaxResponseBytes) out->append(data, std::min(n, kMaxResponseBytes - out->size()));
  return n;
}

Attempt smtp_try(const EmailAlertConfig& c, const std::string& message, const std::string& password,
                 const std::string& ehlo, const AlertDeliveryOptions& o) {
  CurlPtr h(curl_easy_init());
  if (!h) return {false, true, "cannot create a libcurl handle"};
  char errbuf[CURL_ERROR_SIZE] = {0};
  set_common_options(h.get(), o, errbuf);
  const std::string url = url_with_ehlo_name(c.url, ehlo);
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  // `smtp://` with starttls: true must not fall back to clear text.
  const bool tls = c.starttls || c.url.rfind("smtps://", 0) == 0;
  curl_easy_setopt(h.get(), CURLOPT_USE_SSL, static_cast<long>(tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
  if (!c.username.empty()) {
    curl_easy_setopt(h.get(), CURLOPT_USERNAME, c.username.c_str());
    curl_easy_setopt(h.get(), CURLOPT_PASSWORD, password.c_str());
  }
  const std::string from = "<" + smtp_address(c.from) + ">";
  curl_easy_setopt(h.get(), CURLOPT_MAIL_FROM, from.c_str());
  SlistPtr rcpt;
  for (const std::string& to : c.to) slist_append(rcpt, "<" + smtp_address(to) + ">");
  curl_easy_setopt(h.get(), CURLOPT_MAIL_RCPT, rcpt.get());
  UploadSource src{&message};
  curl_easy_setopt(h.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h.get(), CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(h.get(), CURLOPT_READDATA, &src);
  curl_easy_setopt(h.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));

  const CURLcode rc = curl_easy_perform(h.get());
  if (rc == CURLE_OK) return {true, false, ""};
  long reply = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &reply);
  Attempt a;
  a.error = curl_error(rc, errbuf, c.starttls);
  if (reply == 530) {
    // "Authentication required" or "Must issue a STARTTLS command first".
    if (!tls)
      a.error += c.username.empty() ? " (the server wants STARTTLS or authentication first: see `starttls`, "
                                      "`username` and `password_file`)"
                                    : " (the server wants STARTTLS first: set `starttls: true`)";
    else
      a.error += c.username.empty()
                     ? " (the server requires authentication: set `username` and `password_file`)"
                     : " (the server requires authentication but offered no AUTH method)";
  } else if (reply >= 400 && a.error.find(std::to_string(reply)) == std::string::npos) {
    a.error += " (SMTP reply " + std::to_string(reply) + ")";
  }
  // An SMTP 5xx is the server's final word; 4xx asks to try later.
  a.retry = !permanent(rc) && !(reply >= 500 && reply < 600);
  return a;
}

Attempt webhook_try(const WebhookAlertConfig& c, const std::string& body, const std::string& token,
                    const AlertDeliveryOptions& o) {
  CurlPtr h(curl_easy_init());
  if (!h) return {false, true, "cannot create a libcurl handle"};
  char errbuf[CURL_ERROR_SIZE] = {0};
  set_common_options(h.get(), o, errbuf);
  curl_easy_setopt(h.get(), CURLOPT_URL, c.url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.get(), CURLOPT_POST, 1L);
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  SlistPtr headers;
  slist_append(headers, "Content-Type: application/json");
  slist_append(headers, "User-Agent: sqlbak/" SQLBAK_VERSION);
  slist_append(headers, "Expect:");
  if (!token.empty()) slist_append(headers, "Authorization: Bearer " + token);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  std::string response;
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, collect_response);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &response);

  const CURLcode rc = curl_easy_perform(h.get());
  if (rc != CURLE_OK) return {false, !permanent(rc), curl_error(rc, errbuf, false)};
  long status = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return {true, false, ""};
  Attempt a;
  a.error = "HTTP " + std::to_string(status);
  if (status >= 300 && status < 400) a.error += " (redirects are not followed; use the final URL)";
  const std::string shown = printable_line(response, kMaxResponseShown);
  if (!shown.empty()) a.error += ": " + shown;
  a.retry = status >= 500 || status == 408 || status == 429;
  return a;
}

// Runs TRY up to OPTIONS.attempts times with doubling waits between them.
template <typename Try>
AlertChannelResult with_retries(std::string channel, const std::string& url, const AlertDeliveryOptions& o,
                                Try&& attempt) {
  AlertChannelResult r;
  r.channel = std::move(channel);
  r.url = redact_url(url);
  const auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds wait = o.first_backoff;
  const int attempts = std::max(1, o.attempts);
  for (int i = 1; i <= attempts; ++i) {
    if (cancelled(o)) {
      if (r.error.empty()) r.error = "cancelled: sqlbak is stopping";
      break;
    }
    Attempt a = attempt();
    r.attempts = i;
    if (a.ok) {
      r.ok = true;
      r.error.clear();
      break;
    }
    r.error = std::move(a.error);
    if (!a.retry || i == attempts) break;
    backoff(wait, o);
    wait *= 2;
  }
  r.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  return r;
}

AlertChannelResult failed_before_sending(std::string channel, const std::string& url, std::string error) {
  AlertChannelResult r;
  r.channel = std::move(channel);
  r.url = redact_url(url);
  r.error = std::move(error);
  r.attempts = 1;
  return r;
}

}  // namespace

std::string describe(const AlertChannelResult& r) {
  const std::string tries = std::to_string(r.attempts) + (r.attempts == 1 ? " attempt" : " attempts");
  if (r.ok) return r.channel + " " + r.url + ": delivered (" + tries + ")";
  return r.channel + " " + r.url + ": not delivered after " + tries + ": " + r.error;
}

AlertChannelResult send_email_alert(const EmailAlertConfig& c, const AlertEvent& event,
                                    const AlertDeliveryOptions& o) {
  ensure_curl_initialized();
  std::string password;
  if (!c.username.empty() && !c.password_file.empty()) {
    std::string error;
    auto secret = read_secret(c.password_file, false, &error);
    if (!secret) return failed_before_sending("email", c.url, "password_file: " + error);
    password = std::move(*secret);
  }
  const int64_t now = wall_ms();
  AlertEmailOptions mail{.from = c.from, .to = c.to, .date_ms = now, .unique = unique_token(now)};
  const std::string message = render_alert_email(event, mail);
  const std::string ehlo = local_host_name();
  AlertChannelResult r =
      with_retries("email", c.url, o, [&] { return smtp_try(c, message, password, ehlo, o); });
  r.error = scrub(std::move(r.error), password);
  return r;
}

AlertChannelResult send_webhook_alert(const WebhookAlertConfig& c, const AlertEvent& event,
                                      const AlertDeliveryOptions& o) {
  ensure_curl_initialized();
  std::string token;
  if (!c.token_file.empty()) {
    std::string error;
    auto secret = read_secret(c.token_file, true, &error);
    if (!secret) return failed_before_sending("webhook", c.url, "token_file: " + error);
    token = std::move(*secret);
  }
  const std::string body = render_alert_webhook(event);
  AlertChannelResult r = with_retries("webhook", c.url, o, [&] { return webhook_try(c, body, token, o); });
  r.error = scrub(std::move(r.error), token);
  return r;
}

std::vector<AlertChannelResult> send_alert_now(const AlertsConfig& alerts, const AlertEvent& event,
                                               const AlertDeliveryOptions& options) {
  std::vector<AlertChannelResult> results;
  if (alerts.email) results.push_back(send_email_alert(*alerts.email, event, options));
  if (alerts.webhook) results.push_back(send_webhook_alert(*alerts.webhook, event, options));
  return results;
}

std::string redact_url(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url.substr(0, url.find_first_of("?#")));
  const size_t authority_start = scheme_end + 3;
  size_t authority_end = url.find_first_of("/?#", authority_start);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view rest = url.substr(authority_end);
  rest = rest.substr(0, rest.find_first_of("?#"));
  return std::string(url.substr(0, authority_start)) + std::string(authority) + std::string(rest);
}

// ---------------------------------------------------------------------------
// AlertDispatcher

namespace {

struct DispatchChannel {
  std::optional<EmailAlertConfig> email;
  std::optional<WebhookAlertConfig> webhook;
  AlertChannelStatus status;
  bool drop_logged = false;  // a "dropping alerts" line was logged for the current burst

  const std::string& url() const { return email ? email->url : webhook->url; }
  const std::vector<std::string>& on() const { return email ? email->on : webhook->on; }
};

std::vector<DispatchChannel> make_channels(const AlertsConfig& config) {
  std::vector<DispatchChannel> channels;
  if (config.email) {
    DispatchChannel c;
    c.email = config.email;
    c.status.channel = "email";
    channels.push_back(std::move(c));
  }
  if (config.webhook) {
    DispatchChannel c;
    c.webhook = config.webhook;
    c.status.channel = "webhook";
    channels.push_back(std::move(c));
  }
  for (DispatchChannel& c : channels) {
    c.status.url = redact_url(c.url());
    c.status.on = c.on();
  }
  return channels;
}

}  // namespace

struct AlertDispatcher::Shared {
  Shared(const AlertsConfig& config, std::string host_name, Executor exec, Logger logger,
         AlertDeliveryOptions opts)
      : host(std::move(host_name)),
        executor(std::move(exec)),
        log(std::move(logger)),
        options(opts),
        folder(std::chrono::duration_cast<std::chrono::milliseconds>(config.repeat_after)),
        channels(make_channels(config)) {
    options.cancel = &cancel;
  }

  DispatchChannel* find(const std::string& name, const std::string& url) {
    for (DispatchChannel& c : channels)
      if (c.status.channel == name && c.url() == url) return &c;
    return nullptr;
  }

  void emit(const std::string& message) {
    if (log && !message.empty()) log(message);
  }

  const std::string host;
  const Executor executor;
  const Logger log;
  AlertDeliveryOptions options;  // .cancel points at `cancel`
  std::atomic<bool> cancel{false};

  std::mutex mu;
  std::condition_variable idle;           // signalled when `running` drops
  bool stopping = false;                  // GUARDED_BY(mu)
  int running = 0;                        // GUARDED_BY(mu): deliveries between start and their last log line
  AlertFolder folder;                     // GUARDED_BY(mu)
  std::vector<DispatchChannel> channels;  // GUARDED_BY(mu)
};

namespace {

// One delivery, run by the executor.
void deliver(const std::shared_ptr<AlertDispatcher::Shared>& s, DispatchChannel channel,
             const AlertEvent& event);

}  // namespace

AlertDispatcher::AlertDispatcher(const AlertsConfig& config, std::string host, Executor executor, Logger log,
                                 AlertDeliveryOptions options)
    : shared_(
          std::make_shared<Shared>(config, std::move(host), std::move(executor), std::move(log), options)) {
  ensure_curl_initialized();
}

AlertDispatcher::~AlertDispatcher() { shutdown(); }

int AlertDispatcher::raise(AlertEvent event, int64_t now_ms) {
  std::shared_ptr<Shared> s = shared_;
  std::vector<std::function<void()>> tasks;
  std::vector<std::string> messages;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->stopping) return 0;
    if (event.host.empty()) event.host = s->host;
    if (event.time_ms == 0) event.time_ms = now_ms;
    std::vector<DispatchChannel*> wanted;
    for (DispatchChannel& c : s->channels) {
      const auto& on = c.on();
      if (event.kind == AlertKind::kTest ||
          std::find(on.begin(), on.end(), to_string(event.kind)) != on.end())
        wanted.push_back(&c);
    }
    if (wanted.empty()) return 0;
    const AlertFolder::Decision d = s->folder.offer(event, now_ms);
    if (!d.send) return 0;
    event.folded = d.folded;
    event.folded_since_ms = d.folded_since_ms;
    for (DispatchChannel* c : wanted) {
      if (c->status.pending >= kMaxPendingPerChannel) {
        ++c->status.dropped;
        if (!c->drop_logged) {
          c->drop_logged = true;
          messages.push_back(
              "alert: " + c->status.channel + " " + c->status.url + ": " + std::to_string(c->status.pending) +
              " deliveries already pending; dropping alerts until they finish: " + alert_summary(event));
        }
        continue;
      }
      ++c->status.pending;
      tasks.push_back([s, channel = *c, event] { deliver(s, channel, event); });
    }
  }
  for (const std::string& m : messages) s->emit(m);
  const int started = static_cast<int>(tasks.size());
  for (auto& task : tasks) s->executor(std::move(task));
  return started;
}

void AlertDispatcher::reconfigure(const AlertsConfig& config) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<DispatchChannel> channels = make_channels(config);
  for (DispatchChannel& c : channels) {
    if (const DispatchChannel* old = shared_->find(c.status.channel, c.url())) {
      c.status = old->status;
      c.status.on = c.on();
      c.drop_logged = old->drop_logged;
    }
  }
  shared_->channels = std::move(channels);
  shared_->folder.set_repeat_after(
      std::chrono::duration_cast<std::chrono::milliseconds>(config.repeat_after));
}

std::vector<AlertChannelStatus> AlertDispatcher::channel_status() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<AlertChannelStatus> out;
  for (const DispatchChannel& c : shared_->channels) out.push_back(c.status);
  return out;
}

uint64_t AlertDispatcher::folded_pending() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->folder.pending_folded();
}

void AlertDispatcher::shutdown() {
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->stopping = true;
  shared_->cancel = true;
  shared_->idle.wait(lock, [&] { return shared_->running == 0; });
}

namespace {

void deliver(const std::shared_ptr<AlertDispatcher::Shared>& s, DispatchChannel channel,
             const AlertEvent& event) {
  const std::string& name = channel.status.channel;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->stopping) return;  // queued before shutdown: nothing to do
    ++s->running;
  }
  const AlertChannelResult r = channel.email ? send_email_alert(*channel.email, event, s->options)
                                             : send_webhook_alert(*channel.webhook, event, s->options);
  std::string message;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (DispatchChannel* c = s->find(name, channel.url())) {
      AlertChannelStatus& st = c->status;
      if (st.pending > 0) --st.pending;
      if (st.pending == 0) c->drop_logged = false;
      if (r.ok) {
        if (st.consecutive_failures > 0)
          message = "alert: " + name + " " + st.url + " delivers again, after " +
                    std::to_string(st.consecutive_failures) + " failed deliveries";
        ++st.delivered;
        st.consecutive_failures = 0;
        st.last_success_ms = wall_ms();
      } else {
        ++st.failed;
        ++st.consecutive_failures;
        st.last_error = r.error;
        st.last_failure_ms = wall_ms();
      }
    }
    if (!r.ok) message = "alert: " + describe(r) + " (the alert was: " + alert_summary(event) + ")";
    if (s->cancel) message.clear();  // stopping: not worth a line, and the logger may be going away
  }
  s->emit(message);
  {
    std::lock_guard<std::mutex> lock(s->mu);
    --s->running;
  }
  s->idle.notify_all();
}

}  // namespace

}  // namespace sqlbak
