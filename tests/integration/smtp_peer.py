"""Alert peers for the integration tests: a real SMTP server and a webhook receiver,
both on free loopback ports, both in the test's own process.

SmtpPeer runs Debian's python3-aiosmtpd (aiosmtpd.controller.Controller) in a thread:
plain SMTP, SMTP with STARTTLS offered or required, or SMTPS (TLS from the first
byte), optionally requiring AUTH with one user and password. Every message it accepts
is kept (envelope, raw bytes, whether TLS and AUTH were used) and also written to a
mailbox directory, one .eml file per message.

WebhookPeer is an http.server on a thread that records each request (method, path,
headers, body) and answers 500 to the first `fail_first` requests, then 200.

make_self_signed_cert() makes a certificate for 127.0.0.1/localhost with `openssl req`.

Import SKIP_REASON first: it is set when aiosmtpd cannot be imported.
"""

import email
import email.policy
import http.server
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    SKIP_REASON = None
except ImportError as e:  # pragma: no cover - depends on the machine
    Controller = None
    AuthResult = None
    SKIP_REASON = "python3-aiosmtpd is not installed (%s)" % e

# aiosmtpd logs every session (and warns about AUTH without TLS, which the plain
# AUTH test does on purpose); the test output is clearer without it.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RefusingPort:
    """A loopback port that is bound but never listens: connections are refused.
    Holding it keeps any other process from taking the port meanwhile."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.02)


def make_self_signed_cert(directory):
    """(cert.pem, key.pem) in DIRECTORY: a self-signed certificate for 127.0.0.1 and
    localhost, made by `openssl req`. None when openssl is missing."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert = os.path.join(directory, "smtp-cert.pem")
    key = os.path.join(directory, "smtp-key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=120)
    return cert, key


class ReceivedMail:
    """One message the SMTP peer accepted."""

    def __init__(self, mail_from, rcpt_tos, data, tls, login):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data          # bytes, as received after DATA (CRLF line ends)
        self.tls = tls            # the session was encrypted (STARTTLS or SMTPS)
        self.login = login        # the AUTH user name, None without AUTH

    def message(self):
        """The message parsed by Python's email package (modern policy)."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


class _Handler:
    def __init__(self, peer):
        self.peer = peer

    async def handle_DATA(self, server, session, envelope):
        login = None
        if getattr(session, "auth_data", None) is not None:
            login = session.auth_data.login.decode("utf-8", "replace")
        tls = session.ssl is not None or self.peer.mode == "smtps"
        mail = ReceivedMail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content
                            or envelope.content, tls, login)
        self.peer._store(mail)
        return "250 OK message accepted"


class SmtpPeer:
    """An SMTP server on 127.0.0.1:PORT.

    mode: "plain" (no TLS), "starttls" (STARTTLS offered and required before MAIL),
      or "smtps" (TLS from the start). TLS modes need CERT=(cert.pem, key.pem).
    auth: (user, password) to require AUTH with exactly these; None: no AUTH.
    mailbox: a directory to write each message to, as NNN.eml.
    """

    def __init__(self, mode="plain", cert=None, auth=None, mailbox=None):
        if Controller is None:
            raise RuntimeError(SKIP_REASON)
        self.mode = mode
        self.auth = auth
        self.mailbox = mailbox
        self.messages = []
        self.auth_failures = 0
        self._lock = threading.Lock()
        kwargs = {"server_hostname": "smtp-peer.test", "ready_timeout": 10.0}
        context = None
        if mode in ("starttls", "smtps"):
            if not cert:
                raise ValueError("mode %s needs a certificate" % mode)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert[0], cert[1])
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif mode == "smtps":
            kwargs.update(ssl_context=context)
        if auth:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          # aiosmtpd only counts STARTTLS as TLS: under SMTPS it would
                          # neither offer nor accept AUTH if told to require TLS for it.
                          auth_require_tls=(mode == "starttls"))
        last_error = None
        for _ in range(20):  # the free port may be taken between the probe and the bind
            self.port = free_port()
            self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
            try:
                self.controller.start()
                break
            except OSError as e:
                last_error = e
        else:
            raise RuntimeError("cannot start the SMTP peer: %s" % last_error)

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("smtps" if self.mode == "smtps" else "smtp", self.port)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        user, password = self.auth
        ok = (auth_data.login.decode("utf-8", "replace") == user
              and auth_data.password.decode("utf-8", "replace") == password)
        if not ok:
            with self._lock:
                self.auth_failures += 1
        # handled=False: let aiosmtpd answer 535 itself on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _store(self, mail):
        with self._lock:
            self.messages.append(mail)
            n = len(self.messages)
        if self.mailbox:
            os.makedirs(self.mailbox, exist_ok=True)
            with open(os.path.join(self.mailbox, "%03d.eml" % n), "wb") as f:
                f.write(mail.data)

    def received(self):
        with self._lock:
            return list(self.messages)

    def wait_messages(self, count, timeout=30):
        return wait_for(lambda: self.received() if len(self.received()) >= count else None,
                        timeout, "%d message(s) at the SMTP peer" % count)

    def stop(self):
        try:
            self.controller.stop()
        except AssertionError:
            pass


class WebhookPeer:
    """An HTTP server on 127.0.0.1:PORT that records requests.

    fail_first: answer 500 to that many requests, then 200 ({"ok": true}).
    """

    def __init__(self, fail_first=0):
        self.requests = []
        self.fail_first = fail_first
        self._lock = threading.Lock()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with peer._lock:
                    peer.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers.items()), "body": body})
                    failing = peer.fail_first > 0
                    if failing:
                        peer.fail_first -= 1
                status, reply = (500, b"receiver failing on purpose\n") if failing else (200, b'{"ok": true}\n')
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if failing else "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = _answer
            do_GET = _answer
            do_PUT = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def received(self):
        with self._lock:
            return list(self.requests)

    def bodies(self):
        return [json.loads(r["body"]) for r in self.received()]

    def wait_requests(self, count, timeout=30):
        return wait_for(lambda: self.received() if len(self.received()) >= count else None,
                        timeout, "%d request(s) at the webhook peer" % count)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
