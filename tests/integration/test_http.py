#!/usr/bin/env python3
"""sqlbakd's HTTP server (docs/API.md) against the real daemon and a real browser.

Each test starts its own sqlbakd with `http:` on a free loopback port, takes
backups through sqlbakctl, and checks:
  - the JSON API against `sqlbakctl --json` (the same control requests behind both);
  - /metrics, parsed as the Prometheus text format (HELP/TYPE, counters, labels,
    values that match the backups taken);
  - refusals: 401 with and without a wrong token, 405, 404 for path traversal,
    431 for an oversized header, 400 for garbage; idle and slow clients never keep
    others from being served, and the daemon keeps answering `sqlbakctl status`;
  - the dashboard in headless Chromium (--dump-dom, --screenshot): every database,
    the backups, the chart, a running job's progress, and a database path holding
    `<img src=x onerror=alert(1)>` shown as text, never as an element.
The browser test is skipped (77) only when chromium is missing. Processes and
temporary directories are removed in cleanup.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import sqlbaktest as T

XSS = "<img src=x onerror=alert(1)>"
TOKEN = "t0ken-" + "x" * 26
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---- the Prometheus text format, parsed strictly -------------------------------------

SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')


def parse_exposition(text):
    """{'types': {name: type}, 'help': {name: text}, 'samples': [(name, {labels}, value)]}."""
    if not text.endswith("\n"):
        raise AssertionError("exposition does not end with a newline")
    types, helps, samples, sampled = {}, {}, [], set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, value = rest.partition(" ")
            if name in sampled:
                raise AssertionError("%s of %s after its samples" % (kind, name))
            target = helps if kind == "HELP" else types
            if name in target:
                raise AssertionError("two %s lines for %s" % (kind, name))
            target[name] = value
            continue
        if line.startswith("#") or not line:
            raise AssertionError("unexpected line %r" % line)
        m = SAMPLE_RX.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = {}, 0
        while pos < len(labels_text):
            lm = LABEL_RX.match(labels_text, pos)
            if not lm:
                raise AssertionError("bad labels in %r" % line)
            raw = lm.group(2)
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: "\n" if x.group(1) == "n" else x.group(1), raw)
            pos = lm.end()
        if name not in types or name not in helps:
            raise AssertionError("sample %s without HELP and TYPE" % name)
        sampled.add(name)
        samples.append((name, labels, float(value)))
    for name, t in types.items():
        if t not in ("counter", "gauge", "histogram", "summary", "untyped"):
            raise AssertionError("bad type %r of %s" % (t, name))
        if not name.startswith("sqlbak_"):
            raise AssertionError("%s is not prefixed sqlbak_" % name)
        if (t == "counter") != name.endswith("_total"):
            raise AssertionError("%s: counters and only counters end in _total (type %s)" % (name, t))
    return {"types": types, "help": helps, "samples": samples}


def sample(exp, name, **labels):
    hits = [v for n, l, v in exp["samples"] if n == name and l == labels]
    if len(hits) != 1:
        raise AssertionError("expected one sample %s%r, found %d" % (name, labels, len(hits)))
    return hits[0]


# ---- a daemon with HTTP ----------------------------------------------------------------

class HttpTestCase(T.DaemonTestCase):
    token = None

    def start_http(self, token=None, **kw):
        """Writes the config with an `http:` section on a free port and starts sqlbakd."""
        self.port = free_port()
        section = "http:\n  listen: 127.0.0.1:%d\n" % self.port
        if token:
            path = self.env.path("http.token")
            with open(path, "w") as f:
                f.write(token + "\n")
            os.chmod(path, 0o600)
            section += "  token_file: %s\n" % json.dumps(path)
        self.env.write_config(self.env.config_text() + section)
        self.d = self.start_daemon(**kw)
        self.d.wait_log(r"HTTP: dashboard, JSON API and /metrics on http://127\.0\.0\.1:%d/" % self.port)
        return self.d

    def request(self, path, method="GET", headers=None, timeout=30):
        """(status, {lowercase header: value}, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def auth(self):
        return {"Authorization": "Bearer " + self.token} if self.token else {}

    def get_json(self, path, status=200):
        code, headers, body = self.request(path, headers=self.auth())
        self.assertEqual(code, status, "%s: %s\n%s" % (path, body[:2000], self.d.describe()))
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        return json.loads(body)

    def raw_exchange(self, data, timeout=15):
        """Sends DATA on a fresh connection and returns everything until the server closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def backup_wait(self, *dbs, check=0):
        return self.d.ctl_json("backup", *dbs, "--wait", check=check)

    def assert_still_serving(self):
        self.d.ctl("status", check=0, timeout=30)
        code, _, _ = self.request("/api/status", headers=self.auth(), timeout=10)
        self.assertEqual(code, 200, self.d.describe())


def status_code(response_bytes):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", response_bytes)
    return int(m.group(1)) if m else None


class Api(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.small_db("shop")
        self.small_db("blog", rows=20)
        self.start_http()
        self.backup_wait("shop", "blog")
        T.connect(self.env.db_path("shop")).execute("INSERT INTO t(n, b) VALUES (1, randomblob(5000))")
        self.backup_wait("shop")

    def test_api_is_sqlbakctl_json(self):
        status = self.get_json("/api/status")
        ctl = self.d.ctl_json("status")
        for key in ("version", "pid", "config", "databases"):
            self.assertEqual(status[key], ctl[key], key)
        self.assertEqual([d["name"] for d in status["databases"]], ["blog", "shop"])

        self.assertEqual(self.get_json("/api/backups"), self.d.ctl_json("list"))
        shop = self.get_json("/api/backups?db=shop")
        self.assertEqual(shop, self.d.ctl_json("list", "shop"))
        self.assertEqual(len(shop["backups"]), 2)
        self.assertEqual(self.get_json("/api/backups?db=blog&target=local"),
                         self.d.ctl_json("list", "blog", "--target", "local"))

        health = self.get_json("/api/health")
        ctl_health = self.d.ctl_json("health")
        self.assertEqual(health["state"], ctl_health["state"])
        self.assertEqual([(d["name"], d["state"]) for d in health["databases"]],
                         [(d["name"], d["state"]) for d in ctl_health["databases"]])
        self.assertEqual(self.get_json("/api/health?db=shop")["databases"][0]["name"], "shop")

        report = self.get_json("/api/report?days=30")
        ctl_report = self.d.ctl_json("report", "--days", "30")
        self.assertEqual(report["days"], 30)
        self.assertEqual(report["totals"], ctl_report["totals"])
        self.assertEqual([d["date"] for d in report["per_day"]], [d["date"] for d in ctl_report["per_day"]])
        self.assertEqual(sum(d["backups"] for d in report["per_day"]), 3)

        self.assertEqual(self.get_json("/api/jobs"), {"jobs": []})

    def test_api_errors(self):
        err = self.get_json("/api/health?db=nope", status=404)
        self.assertEqual(err["error"]["code"], "not_found")
        self.assertIn("nope", err["error"]["message"])
        for path in ("/api/report?days=0", "/api/report?days=abc", "/api/report?days=7&days=8",
                     "/api/status?x=1", "/api/backups?database=shop", "/api/backups?db=%zz"):
            err = self.get_json(path, status=400)
            self.assertIn(err["error"]["code"], ("usage", "invalid_argument"), path)
            self.assertTrue(err["error"]["message"], path)
        for path in ("/nope", "/api", "/api/", "/api/status/", "/api/statuses", "/index.php"):
            err = self.get_json(path, status=404)
            self.assertEqual(err["error"]["code"], "not_found", path)

    def test_head_keep_alive_and_headers(self):
        code, headers, body = self.request("/api/status", method="HEAD")
        self.assertEqual(code, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(headers["content-length"]), 10)
        self.assertEqual(headers.get("cache-control"), "no-store")

        # Two requests on one connection.
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for path in ("/api/jobs", "/api/status"):
                c.request("GET", path)
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                json.loads(r.read())
        finally:
            c.close()

        code, headers, body = self.request("/")
        self.assertEqual(code, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        csp = headers["content-security-policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertIn("script-src 'sha256-", csp)
        page = body.decode()
        self.assertNotRegex(page, r"(?i)(src|href)=\"?https?:", "the page loads nothing from elsewhere")
        self.assertNotIn("innerHTML", page)

    def test_metrics(self):
        code, headers, body = self.request("/metrics")
        self.assertEqual(code, 200, body)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"), headers)
        exp = parse_exposition(body.decode())
        types = exp["types"]
        for name, t in {"sqlbak_last_success_timestamp_seconds": "gauge",
                        "sqlbak_last_backup_duration_seconds": "gauge",
                        "sqlbak_last_backup_database_bytes": "gauge",
                        "sqlbak_last_backup_stored_bytes": "gauge",
                        "sqlbak_last_backup_changed_pages": "gauge",
                        "sqlbak_target_stored_bytes": "gauge",
                        "sqlbak_backups_total": "counter",
                        "sqlbak_verification_failures_total": "counter",
                        "sqlbak_health_state": "gauge",
                        "sqlbak_target_requests_total": "counter",
                        "sqlbak_target_uploaded_bytes_total": "counter",
                        "sqlbak_target_downloaded_bytes_total": "counter",
                        "sqlbak_job_running": "gauge",
                        "sqlbak_job_progress_ratio": "gauge",
                        "sqlbak_info": "gauge",
                        "sqlbak_uptime_seconds": "gauge"}.items():
            self.assertEqual(types.get(name), t, name)

        status = self.d.ctl_json("status")
        self.assertEqual(sample(exp, "sqlbak_info", version=status["version"]), 1)
        self.assertGreaterEqual(sample(exp, "sqlbak_uptime_seconds"), 0)
        newest = {}
        for b in self.d.ctl_json("list")["backups"]:
            newest.setdefault(b["database"], b)
        for db, n_backups in (("shop", 2), ("blog", 1)):
            b = newest[db]
            lab = {"db": db, "target": "local"}
            self.assertEqual(sample(exp, "sqlbak_backups_total", result="success", **lab), n_backups)
            self.assertEqual(sample(exp, "sqlbak_backups_total", result="failure", **lab), 0)
            self.assertEqual(sample(exp, "sqlbak_verification_failures_total", **lab), 0)
            self.assertEqual(sample(exp, "sqlbak_last_backup_database_bytes", **lab), b["database_bytes"])
            self.assertEqual(sample(exp, "sqlbak_last_backup_stored_bytes", **lab), b["stored_bytes"])
            self.assertEqual(sample(exp, "sqlbak_last_backup_changed_pages", **lab), b["new_pages"])
            started = sample(exp, "sqlbak_last_success_timestamp_seconds", **lab)
            self.assertLessEqual(abs(started - b["created_unix_ms"] / 1000), 5)
            self.assertGreaterEqual(sample(exp, "sqlbak_last_backup_duration_seconds", **lab), 0)
            self.assertEqual(sample(exp, "sqlbak_health_state", db=db), 0)
            self.assertEqual(sample(exp, "sqlbak_job_running", db=db), 0)
            self.assertEqual(sample(exp, "sqlbak_job_progress_ratio", db=db), 0)
        stored = sum(b["stored_bytes"] for b in self.d.ctl_json("list")["backups"])
        self.assertEqual(sample(exp, "sqlbak_target_stored_bytes", target="local"), stored)
        self.assertGreaterEqual(sample(exp, "sqlbak_target_uploaded_bytes_total", target="local"), stored)
        for method in ("put", "get", "list", "delete"):
            sample(exp, "sqlbak_target_requests_total", target="local", method=method)

        # A failed backup is counted by result, and health follows.
        os.unlink(self.env.db_path("blog"))
        self.backup_wait("blog", check=1)
        exp = parse_exposition(self.request("/metrics")[2].decode())
        failures = sum(v for n, l, v in exp["samples"]
                       if n == "sqlbak_backups_total" and l.get("db") == "blog" and l["result"] == "failure")
        self.assertEqual(failures, 1)
        self.assertGreaterEqual(sample(exp, "sqlbak_health_state", db="blog"), 1)


class Refusals(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.small_db("shop")
        self.start_http()

    def test_methods_and_traversal(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            code, headers, body = self.request("/api/status", method=method)
            self.assertEqual(code, 405, method)
            self.assertEqual(headers.get("allow"), "GET, HEAD")
            self.assertEqual(json.loads(body)["error"]["code"], "usage")
        for path in ("/../etc/passwd", "/%2e%2e/", "/%2e%2e/etc/passwd", "/api/%2E%2E/api/status",
                     "/..%2f..%2fetc%2fpasswd", "/./metrics", "/api/..", "/a\\..\\b", "/%00"):
            code, _, body = self.request(path)
            self.assertEqual(code, 404, path)
            self.assertNotIn(b"root:", body)
        self.d.wait_log(r"refused GET /%2e%2e/ from 127\.0\.0\.1:\d+: 404, path traversal refused")
        self.d.wait_log(r"refused POST /api/status from 127\.0\.0\.1:\d+: 405")
        # A body on a GET is refused too.
        reply = self.raw_exchange(b"GET /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        self.assertEqual(status_code(reply), 413, reply)
        self.assert_still_serving()

    def test_oversized_header_and_garbage(self):
        big = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * 16384 + b"\r\n\r\n"
        reply = self.raw_exchange(big)
        self.assertEqual(status_code(reply), 431, reply[:300])
        many = b"GET /api/status HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200)) + b"\r\n"
        self.assertEqual(status_code(self.raw_exchange(many)), 431)
        for garbage in (b"HELLO\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
                        b"GET / HTTP/9.9\r\n\r\n", b"GET /api/status HTTP/1.1\r\nBad Header\r\n\r\n"):
            reply = self.raw_exchange(garbage)
            self.assertIn(status_code(reply), (400, None), reply[:200])
        self.d.wait_log(r"431, request header larger than 8192 bytes")
        self.assert_still_serving()

    def test_idle_connections_do_not_block(self):
        idle = []
        try:
            for _ in range(64):
                idle.append(socket.create_connection(("127.0.0.1", self.port), timeout=10))
            # Half-sent requests too: the connection limit is 32.
            for s in idle[:8]:
                s.sendall(b"GET /api/status HTTP/1.1\r\n")
            t0 = time.monotonic()
            code, _, body = self.request("/api/status", timeout=10)
            elapsed = time.monotonic() - t0
            self.assertEqual(code, 200, body)
            self.assertLess(elapsed, 5, "a request waited %.1f s behind idle connections" % elapsed)
            self.d.ctl("status", check=0)
        finally:
            for s in idle:
                s.close()

    def test_a_thousand_connections(self):
        conns = []
        try:
            for _ in range(1000):
                try:
                    conns.append(socket.create_connection(("127.0.0.1", self.port), timeout=10))
                except OSError as e:  # the backlog filled: fine, as long as it keeps serving
                    print("connection refused after %d: %s" % (len(conns), e))
                    break
            self.assertGreater(len(conns), 100)
            t0 = time.monotonic()
            self.assert_still_serving()
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            for s in conns:
                s.close()
        self.assert_still_serving()

    def test_slowloris_is_cut_off(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        request = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
        closed_after = []

        def trickle():
            t0 = time.monotonic()
            try:
                for byte in request:
                    s.sendall(bytes([byte]))
                    time.sleep(1)
                    s.setblocking(False)
                    try:
                        if s.recv(4096) == b"":
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        s.setblocking(True)
            except OSError:
                pass
            closed_after.append(time.monotonic() - t0)

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            # Meanwhile everyone else is served at once.
            for _ in range(5):
                t0 = time.monotonic()
                code, _, _ = self.request("/api/jobs", timeout=10)
                self.assertEqual(code, 200)
                self.assertLess(time.monotonic() - t0, 3)
                time.sleep(1)
            t.join(timeout=40)
            self.assertFalse(t.is_alive(), "the slow client was not cut off")
            self.assertTrue(closed_after and closed_after[0] < 20, closed_after)
            self.assertLess(closed_after[0], len(request) - 5, "the server waited for the whole slow request")
        finally:
            s.close()
        self.d.wait_log(r"no complete request within 10 s")
        self.assert_still_serving()


class Token(HttpTestCase):
    token = TOKEN

    def setUp(self):
        super().setUp()
        self.small_db("shop")
        self.start_http(token=TOKEN)

    def test_bearer_token(self):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
                        {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": "Basic " + TOKEN},
                        {"Authorization": TOKEN}):
            for path in ("/api/status", "/api/backups", "/api/report?days=30", "/nope"):
                code, h, body = self.request(path, headers=headers)
                self.assertEqual(code, 401, (path, headers))
                self.assertTrue(h.get("www-authenticate", "").startswith("Bearer"), h)
                self.assertEqual(json.loads(body)["error"]["code"], "permission_denied")
        self.assertEqual(self.request("/api/status", headers=self.auth())[0], 200)
        self.assertEqual(self.request("/api/status", headers={"Authorization": "bearer  " + TOKEN})[0], 200)
        self.assertEqual(self.request("/nope", headers=self.auth())[0], 404)
        # /metrics: open without a token, but a wrong one is refused.
        self.assertEqual(self.request("/metrics")[0], 200)
        self.assertEqual(self.request("/metrics", headers=self.auth())[0], 200)
        self.assertEqual(self.request("/metrics", headers={"Authorization": "Bearer nope"})[0], 401)
        # The page holds no data and asks for the token itself.
        self.assertEqual(self.request("/")[0], 200)

        self.d.wait_log(r"401, a bearer token is required")
        self.d.wait_log(r"401, wrong or malformed bearer token")
        self.assertNotIn(TOKEN, self.d.log())
        self.assertNotIn(TOKEN[:-1], self.d.log())

    def test_reload_reads_the_token_again(self):
        with open(self.env.path("http.token"), "w") as f:
            f.write("new-token-value\n")
        self.d.ctl("reload", check=0)
        self.assertEqual(self.request("/api/status", headers=self.auth())[0], 401)
        self.assertEqual(self.request("/api/status", headers={"Authorization": "Bearer new-token-value"})[0], 200)


class Listener(HttpTestCase):
    """The `http:` section: start errors, IPv6, reload."""

    def test_listen_error_is_a_start_error(self):
        self.small_db("shop")
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        self.env.write_config(self.env.config_text() + "http:\n  listen: 127.0.0.1:%d\n" % port)
        d = self.start_daemon(ready=False)
        rc = d.wait_exit()
        self.assertNotEqual(rc, 0, d.describe())
        self.assertRegex(d.log(), r"cannot listen on HTTP address 127\.0\.0\.1:%d: " % port)
        self.assertFalse(os.path.exists(d.socket), "the control socket was left behind")

    def test_ipv6_loopback(self):
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
        except OSError:
            raise unittest.SkipTest("no IPv6 loopback here")
        finally:
            probe.close()
        self.small_db("shop")
        self.env.write_config(self.env.config_text() + "http:\n  listen: \"[::1]:%d\"\n" % port)
        d = self.start_daemon()
        d.wait_log(r"on http://\[::1\]:%d/" % port)
        c = http.client.HTTPConnection("::1", port, timeout=30)
        try:
            c.request("GET", "/api/jobs")
            r = c.getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, {"jobs": []}))
        finally:
            c.close()

    def test_reload_moves_the_listener(self):
        self.small_db("shop")
        self.start_http()
        old = self.port
        new = free_port()
        text = self.env.config_text() + "http:\n  listen: 127.0.0.1:%d\n" % new
        self.env.write_config(text)
        self.d.ctl("reload", check=0)
        self.port = new
        self.assertEqual(self.request("/api/jobs")[0], 200)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", old), timeout=5).close()
        # Without the section, HTTP is off after the next reload.
        self.env.write_config(self.env.config_text())
        self.d.ctl("reload", check=0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", new), timeout=5).close()
        self.d.ctl("status", check=0)


# ---- the browser -----------------------------------------------------------------------

class Browser(HttpTestCase):
    def setUp(self):
        if CHROMIUM is None:
            raise unittest.SkipTest("chromium is not installed")
        super().setUp()

    def chromium(self, url, *args, budget_ms=10000, window="1280,2000"):
        """Runs headless Chromium on URL with ARGS (--dump-dom, --screenshot=...); returns stdout."""
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.env.root)
        cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
               "--user-data-dir=" + profile, "--window-size=" + window,
               "--virtual-time-budget=%d" % budget_ms] + list(args) + [url]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=dict(os.environ, HOME=profile))
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise AssertionError("chromium did not finish within 120 s\n%s" % err.decode(errors="replace")[-3000:])
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if p.returncode != 0:
            raise AssertionError("chromium exited %d\n%s" % (p.returncode, err.decode(errors="replace")[-3000:]))
        return out.decode("utf-8", "replace")

    def artifact_path(self, name):
        base = os.environ.get("SQLBAK_TEST_ARTIFACTS") or os.path.join(
            os.environ.get("SQLBAK_TOOLS_DIR") or self.env.root, "artifacts")
        os.makedirs(base, exist_ok=True)
        return os.path.join(base, name)

    def dom(self):
        return self.chromium("http://127.0.0.1:%d/" % self.port, "--dump-dom")

    def test_dashboard(self):
        self.small_db("shop")
        self.small_db("blog", rows=10)
        # Database names are [A-Za-z0-9_.-]; the path and the error text are free.
        self.env.add_database("evil", os.path.join(self.env.dbdir, XSS + ".db"))
        self.start_http()
        self.backup_wait("shop", "blog")
        T.connect(self.env.db_path("shop")).execute("INSERT INTO t(n, b) VALUES (1, randomblob(9000))")
        self.backup_wait("shop")
        self.backup_wait("evil", check=1)
        ids = [b["id"] for b in self.d.ctl_json("list")["backups"]]
        self.assertEqual(len(ids), 3)

        dom = self.dom()
        for db in ("shop", "blog", "evil"):
            self.assertIn('data-db="%s"' % db, dom, dom[-4000:])
        for backup_id in ids:
            self.assertIn('data-backup="%s"' % backup_id, dom)
        # The path and the error that holds it are text: escaped in the DOM, no <img> element.
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;", dom)
        self.assertNotRegex(dom, r"(?i)<img\b")
        self.assertRegex(dom, r"does not exist")
        # Health at a glance, and the chart of the last 30 days.
        self.assertRegex(dom, r'class="card (ok|warning|critical|unknown)" data-db="shop"')
        self.assertRegex(dom, r'class="card critical" data-db="evil"')
        self.assertIn('id="history-chart"', dom)
        self.assertRegex(dom, r'<rect [^>]*class="bar"')
        self.assertIn("No backup is running.", dom)

        for name, window in (("dashboard.png", "1280,1800"), ("dashboard-phone.png", "390,1600")):
            path = self.artifact_path(name)
            if os.path.exists(path):
                os.unlink(path)
            self.chromium("http://127.0.0.1:%d/" % self.port, "--screenshot=" + path, window=window)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertGreater(os.path.getsize(path), 10000)
            print("screenshot: %s" % path)

    def test_progress_of_a_running_backup(self):
        # Large enough that the copy, held back by zstd -19 on one-page steps, takes
        # tens of seconds and its page count moves every few seconds. The pipeline
        # lets the copy run up to ~16 MiB ahead of compression (batches waiting to
        # be hashed, blocks waiting for a compressor): a small fraction of 80 MiB,
        # so the first progress seen is below half.
        self.slow_db("big", 80)
        self.start_http()
        self.d.ctl("backup", "big", check=0)

        def running():
            r = self.d.ctl_json("status")["databases"][0]["running"]
            return r if r and 0 < r["done"] < r["total"] // 2 else None
        T.wait_until(running, interval=0.2, what="the backup of 'big' to make progress")
        seen = []
        for _ in range(6):
            dom = self.chromium("http://127.0.0.1:%d/" % self.port, "--dump-dom", budget_ms=3000)
            m = re.search(r'data-job="\d+".*?aria-valuenow="(\d+)".*?(\d+) / (\d+) pages', dom, re.S)
            if m is None:
                self.assertIsNone(self.d.ctl_json("status")["databases"][0]["running"], dom[-4000:])
                break  # it ended
            percent, done, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
            self.assertEqual(percent, round(100 * done / total))
            self.assertIn('data-db="big"', dom)
            self.assertRegex(dom, r"Backing up: \d+ %")
            seen.append(done)
            if len(set(seen)) > 1:
                break
            time.sleep(2)
        self.assertTrue(seen, "the backup ended before the browser saw it")
        self.assertGreater(len(set(seen)), 1, "progress did not move between page loads: %r" % seen)
        self.assertEqual(seen, sorted(seen))

    def test_token_prompt(self):
        self.small_db("shop")
        self.start_http(token=TOKEN)
        dom = self.dom()
        self.assertRegex(dom, r'<section id="auth" class="banner">')  # shown: no `hidden`
        self.assertNotIn('data-db="shop"', dom)


if __name__ == "__main__":
    T.main()
