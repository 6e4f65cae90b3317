#!/usr/bin/env python3
"""sqlbak's security promises (issue 9, docs/SECURITY.md), against the real binaries:

- sqlbakd and sqlbakctl are not dumpable (prctl PR_SET_DUMPABLE 0): run as another
  user, their /proc/PID files belong to root, so that user can neither ptrace them
  nor read their memory; and a crash leaves no core file that would hold secrets.
- A configuration or secret file that other users can read draws a warning naming
  the file and the chmod that fixes it: in `sqlbakd --check-config`, the daemon's
  log at start, `sqlbakctl config check` (and its --json); offline sqlbakctl warns
  about the secret files it reads; after the chmod there is none, and a file in a directory closed to others draws
  none either.
- A restored database is 0600 whatever the umask; one replaced with --force keeps
  the old file's mode, minus write permission for others.
- No control request makes the daemon touch a path: `restore` (and other unknown
  commands carrying paths) are refused and write nothing; database and target names
  that could leave a repository ("../..", "a/b", "/etc") are refused by every command.
- The S3 secret key, the HTTP token, the SMTP password and the webhook token appear
  nowhere: not in status, health, list, report, the HTTP API, /metrics, the
  dashboard, the catalog, the daemon's log or sqlbakctl's output, even while the S3
  target refuses every request and the alert channels are dead.

Processes run as "nobody" through setpriv when the tests run as root (skipped where
that is not possible). Standard library only.
"""

import http.client
import http.server
import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

import sqlbaktest as T


def proc_owner(pid):
    """The owner of /proc/PID/environ: root (0) for a process that is not dumpable."""
    return os.stat("/proc/%d/environ" % pid).st_uid


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid: line for pid %d" % pid)


def proc_comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


def as_other_user_prefix():
    """(argv prefix, uid) to run a command as another user, or raise SkipTest."""
    if os.geteuid() != 0:
        # Not root: the command runs as us, and root is "other" for /proc ownership.
        return [], os.geteuid()
    uid = nobody()
    if uid is None or not shutil.which("setpriv"):
        raise unittest.SkipTest("needs setpriv and a 'nobody' user to act as another user")
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"], uid


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---- not dumpable -------------------------------------------------------------------

class NotDumpable(T.DaemonTestCase):

    def test_daemon_run_as_another_user_is_not_dumpable(self):
        prefix, uid = as_other_user_prefix()
        if not parents_open(self.env.root):
            self.skipTest("the temporary directory's parents are closed to others ($TMPDIR)")
        self.small_db("shop")
        os.chmod(self.env.root, 0o755)
        for dirpath, dirs, files in os.walk(self.env.root):
            for n in dirs + files + ["."]:
                os.chown(os.path.join(dirpath, n), uid, uid)
        log = open(self.env.path("sqlbakd-nobody.log"), "wb")
        p = self.env.spawn(prefix + [T.SQLBAKD, "-c", self.env.config], stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT)
        log.close()
        sock = self.env.path("control.sock")
        T.wait_until(lambda: os.path.exists(sock) or p.poll() is not None, what="the control socket")
        if p.poll() is not None:
            with open(self.env.path("sqlbakd-nobody.log")) as f:
                self.fail("sqlbakd exited at start:\n" + f.read())
        self.assertEqual(proc_uid(p.pid), uid)
        # A dumpable process's /proc files belong to its user; these belong to root.
        self.assertEqual(proc_owner(p.pid), 0, "sqlbakd's /proc files belong to its user: it is dumpable")
        # The check itself works: the same user's `sleep` is dumpable. Between
        # setpriv's change of user and its exec of sleep, the process is not
        # dumpable (the kernel's rule for a process that changes credentials),
        # so look only once it runs sleep.
        control = self.env.spawn(prefix + ["sleep", "60"])
        T.wait_until(lambda: proc_uid(control.pid) == uid and proc_comm(control.pid) == "sleep",
                     what="sleep to run as uid %d" % uid)
        self.assertEqual(proc_owner(control.pid), uid)
        control.kill()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=T.DAEMON_WAIT), 0)

    def test_sqlbakctl_is_not_dumpable(self):
        prefix, uid = as_other_user_prefix()
        if not parents_open(self.env.root):
            self.skipTest("the temporary directory's parents are closed to others ($TMPDIR)")
        os.chmod(self.env.root, 0o755)
        # A "daemon" that accepts and never answers holds sqlbakctl while we look.
        sock_path = self.env.path("silent.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(server.close)
        server.bind(sock_path)
        os.chmod(sock_path, 0o777)
        server.listen(1)
        server.settimeout(T.DAEMON_WAIT)
        p = self.env.spawn(prefix + [T.SQLBAKCTL, "-s", sock_path, "status"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        conn, _ = server.accept()
        try:
            self.assertEqual(proc_uid(p.pid), uid)
            self.assertEqual(proc_owner(p.pid), 0, "sqlbakctl's /proc files belong to its user: it is dumpable")
        finally:
            conn.close()
        p.communicate(timeout=T.DAEMON_WAIT)

    def test_a_crashing_daemon_leaves_no_core_file(self):
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
        if pattern.startswith("|") or "/" in pattern:
            self.skipTest("core_pattern %r: core files do not land in the working directory" % pattern)

        def unlimited_core():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        def cores(d):
            return [n for n in os.listdir(d) if n.startswith("core")]

        # The check itself works: a dumpable process dumps core here.
        control_dir = self.env.path("control-cwd")
        os.makedirs(control_dir)
        try:
            control = subprocess.Popen(["sleep", "60"], cwd=control_dir, preexec_fn=unlimited_core)
        except (ValueError, OSError) as e:
            self.skipTest("cannot raise RLIMIT_CORE: %s" % e)
        control.send_signal(signal.SIGSEGV)
        control.wait(timeout=T.DAEMON_WAIT)
        if not cores(control_dir):
            self.skipTest("a dumpable process leaves no core file here (core_pattern %r)" % pattern)

        self.small_db("shop")
        daemon_dir = self.env.path("daemon-cwd")
        os.makedirs(daemon_dir)
        log = open(self.env.path("sqlbakd-crash.log"), "wb")
        # In the sanitizer build, ASan would catch the SIGSEGV (and abort) and would
        # itself refuse core dumps: both are turned off so that only sqlbakd's own
        # protection stands between the crash and a core file.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":handle_segv=0:disable_coredump=0").lstrip(":")
        p = self.env.spawn([T.SQLBAKD, "-c", self.env.config], cwd=daemon_dir, preexec_fn=unlimited_core,
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True, env=env)
        log.close()
        sock = self.env.path("control.sock")
        T.wait_until(lambda: os.path.exists(sock) or p.poll() is not None, what="the control socket")
        self.assertIsNone(p.poll())
        p.send_signal(signal.SIGSEGV)
        self.assertEqual(p.wait(timeout=T.DAEMON_WAIT), -signal.SIGSEGV)
        self.assertEqual(cores(daemon_dir), [], "sqlbakd left a core file")


# ---- warnings about permissions -----------------------------------------------------

def parents_open(path):
    """Whether every directory above PATH lets others pass (o+x)."""
    p = os.path.dirname(os.path.realpath(path))
    while True:
        if not os.stat(p).st_mode & 0o001:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


class PermissionWarnings(T.DaemonTestCase):

    def setUp(self):
        super().setUp()
        if not parents_open(self.env.root):
            self.skipTest("the temporary directory's parents are closed to others ($TMPDIR)")
        self.small_db("shop")
        # Others can reach the files only if they can pass through the directory.
        os.chmod(self.env.root, 0o755)
        self.token = self.env.path("http.token")
        with open(self.token, "w") as f:
            f.write("tok-%d\n" % self.rng.randrange(1 << 30))
        os.chmod(self.token, 0o644)
        self.env.write_config(self.env.config_text() +
                              "http:\n  listen: 127.0.0.1:%d\n  token_file: %s\n" % (free_port(), json.dumps(self.token)))
        os.chmod(self.env.config, 0o644)

    def assertWarnsAbout(self, text, path, fix="chmod o-r"):
        self.assertIn(path, text)
        self.assertIn("readable by other users", text)
        self.assertIn("%s %s" % (fix, path), text)

    def test_check_config_and_sqlbakctl_warn_and_stop_after_the_chmod(self):
        p = subprocess.run([T.SQLBAKD, "--check-config", "-c", self.env.config], capture_output=True, text=True,
                           timeout=T.COMMAND_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertWarnsAbout(p.stderr, self.env.config)
        self.assertWarnsAbout(p.stderr, self.token)
        self.assertIn("http.token_file", p.stderr)

        rc, out, err = T.run_ctl(["config", "check", self.env.config], check=0)
        self.assertWarnsAbout(err, self.env.config)
        self.assertWarnsAbout(err, self.token)
        rc, out, err = T.run_ctl(["--json", "config", "check", self.env.config], check=0)
        doc = json.loads(out)
        self.assertTrue(doc["valid"])
        self.assertEqual(len(doc["warnings"]), 2, doc)

        # Offline sqlbakctl reads the secrets: it warns about them (the config file
        # holds none, and is left to the daemon's log and the config checks).
        rc, out, err = self.env.ctl("list", check=0)
        self.assertWarnsAbout(err, self.token)
        self.assertNotIn("configuration file", err)
        # The secret itself is never shown.
        with open(self.token) as f:
            self.assertNotIn(f.read().strip(), err)

        os.chmod(self.env.config, 0o600)
        os.chmod(self.token, 0o640)
        p = subprocess.run([T.SQLBAKD, "--check-config", "-c", self.env.config], capture_output=True, text=True,
                           timeout=T.COMMAND_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("warning", p.stderr.lower())
        rc, out, err = self.env.ctl("list", check=0)
        self.assertNotIn("warning", err.lower())

    def test_world_writable_is_called_out_too(self):
        os.chmod(self.env.config, 0o666)
        rc, out, err = T.run_ctl(["config", "check", self.env.config], check=0)
        self.assertIn("readable and writable by other users (mode 0666)", err)
        self.assertIn("chmod o-rw " + self.env.config, err)

    def test_a_closed_directory_keeps_others_out(self):
        os.chmod(self.env.root, 0o700)
        rc, out, err = T.run_ctl(["config", "check", self.env.config], check=0)
        self.assertNotIn("warning", err.lower())

    def test_the_daemon_logs_the_warnings_at_start(self):
        d = self.start_daemon()
        d.wait_log(r"warning: configuration file %s is readable by other users" % re.escape(self.env.config))
        d.wait_log(r"warning: secret file \(http\.token_file\) %s is readable" % re.escape(self.token))
        self.assertEqual(d.stop(), 0)


# ---- modes of restored files ----------------------------------------------------------

class RestoredModes(T.EnvTestCase):

    def restore_with_umask(self, backup_id, to, umask, force=False):
        args = [T.SQLBAKCTL] + self.env.ctl_args("restore", backup_id, "--to", to) + (["--force"] if force else [])
        p = subprocess.run(args, capture_output=True, text=True, timeout=T.COMMAND_TIMEOUT,
                           preexec_fn=lambda: os.umask(umask))
        self.assertEqual(p.returncode, 0, T.describe(args, p.returncode, p.stdout, p.stderr))
        return os.stat(to).st_mode & 0o7777

    def test_restored_files_are_private_whatever_the_umask(self):
        db = self.env.add_database("shop")
        T.create_db(db, rows=100, journal_mode="wal")
        os.chmod(db, 0o666)
        b = self.env.backup_one("shop")
        for umask in (0o000, 0o022, 0o077):
            to = os.path.join(self.env.out, "umask-%03o.db" % umask)
            self.assertEqual(self.restore_with_umask(b["id"], to, umask), 0o600, "umask %03o" % umask)
            self.assertEqual(T.integrity_check(to), "ok")

    def test_force_keeps_the_old_mode_but_never_world_writable(self):
        db = self.env.add_database("shop")
        T.create_db(db, rows=100)
        b = self.env.backup_one("shop")
        for old, expected in ((0o640, 0o640), (0o666, 0o664), (0o444, 0o644), (0o4755, 0o755)):
            to = os.path.join(self.env.out, "old-%04o.db" % old)
            with open(to, "wb") as f:
                f.write(b"old")
            os.chmod(to, old)
            self.assertEqual(self.restore_with_umask(b["id"], to, 0o000, force=True), expected, oct(old))
            self.assertEqual(T.db_digest(to), T.db_digest(db))


# ---- no paths over the socket ----------------------------------------------------------

class NoPathsOverTheSocket(T.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.small_db("shop")
        self.d = self.start_daemon()
        self.backup_id = self.d.ctl_json("backup", "--wait", "shop")["backups"][0]["id"]
        self.outside = self.env.path("outside")
        os.makedirs(self.outside)

    def request(self, command, args):
        frames = T.control_request(self.d.socket, command, args)
        self.assertTrue(frames, "no reply to %s %r" % (command, args))
        return frames[-1]

    def assertRefused(self, reply, code=None):
        self.assertIs(reply.get("ok"), False, reply)
        if code:
            self.assertEqual(reply["error"]["code"], code, reply)

    def test_restore_and_other_path_commands_are_refused(self):
        target = os.path.join(self.outside, "evil.db")
        for command, args in (
                ("restore", {"what": self.backup_id, "to": target}),
                ("restore", {"what": "shop", "at": "now", "to": target, "force": True}),
                ("write", {"path": target}),
                ("dump", {"to": target}),
                ("config", {"file": target})):
            self.assertRefused(self.request(command, args))
        self.assertEqual(os.listdir(self.outside), [])
        self.assertFalse(any(n.startswith(".evil.db") for n in os.listdir(self.outside)))

    def test_names_that_leave_the_repository_are_refused(self):
        bad = ["../../..", "..", ".", "a/b", "/etc", "shop/../../x", "..\\x", "shop\n"]
        for name in bad:
            for command, args in (("list", {"database": name}),
                                  ("list", {"target": name}),
                                  ("verify", {"database": name}),
                                  ("health", {"database": name}),
                                  ("report", {"database": name}),
                                  ("rotate", {"database": name, "dry_run": True}),
                                  ("backup", {"databases": [name], "wait": True}),
                                  ("show", {"id": self.backup_id, "target": name})):
                with self.subTest(command=command, name=name):
                    self.assertRefused(self.request(command, args), "invalid_argument")
        self.d.wait_log(r"refused a control request 'list' from uid \d+")
        # Ids are checked as ids: nothing is read at a path made of one.
        for ident in ("../../../../etc/passwd", "/etc/passwd", self.backup_id + "/../x"):
            self.assertRefused(self.request("show", {"id": ident}))
            reply = self.request("verify", {"ids": [ident]})
            results = reply.get("result", {}).get("results", [])
            self.assertTrue(reply.get("ok") is False or (results and not any(r["ok"] for r in results)), reply)
            self.assertNotIn("root:", json.dumps(reply))
        # Well-formed names still work, and the daemon is fine.
        self.assertIs(self.request("list", {"database": "shop"})["ok"], True)
        self.assertIs(self.request("list", {"database": "no-such-db"})["ok"], True)
        self.assertEqual(self.d.ctl_json("list")["backups"][0]["id"], self.backup_id)
        self.assertEqual(self.d.stop(), 0)


# ---- secrets stay secret -------------------------------------------------------------

class RefusingS3(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that refuses every request, as with wrong credentials."""

    def _refuse(self):
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
                b'<Message>The request signature we calculated does not match the signature you provided.'
                b'</Message></Error>')
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _refuse

    def log_message(self, *args):
        pass


class SecretsStaySecret(T.DaemonTestCase):

    def setUp(self):
        super().setUp()
        r = self.rng.randrange(1 << 40)
        self.secrets = {
            "s3_secret": "S3secretKEY%dzz" % r,
            "http_token": "httpTOKEN%dzz" % r,
            "smtp_password": "smtpPASS%dzz" % r,
            "webhook_token": "hookTOKEN%dzz" % r,
        }
        files = {}
        for name, value in self.secrets.items():
            files[name] = self.env.path(name)
            with open(files[name], "w") as f:
                f.write(value + "\n")
            os.chmod(files[name], 0o600)
        key_id = self.env.path("s3_key_id")
        with open(key_id, "w") as f:
            f.write("AKIDSQLBAKTEST\n")
        self.s3 = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingS3)
        threading.Thread(target=self.s3.serve_forever, daemon=True).start()
        self.addCleanup(self.s3.server_close)
        self.addCleanup(self.s3.shutdown)
        dead = free_port()  # nothing listens: the alert channels fail
        self.port = free_port()
        self.small_db("shop")
        self.env.db_settings["shop"] = {"targets": "[local, offsite]"}
        self.small_db("notes")  # local only: something to list and show
        text = self.env.config_text()
        text = text.replace("targets:\n", (
            "targets:\n"
            "  offsite: {type: s3, endpoint: \"http://127.0.0.1:%d\", region: us-east-1, bucket: b, prefix: p/,"
            " access_key_id_file: %s, secret_access_key_file: %s}\n") % (
                self.s3.server_address[1], json.dumps(key_id), json.dumps(files["s3_secret"])), 1)
        text += (
            "http:\n  listen: 127.0.0.1:%d\n  token_file: %s\n"
            "alerts:\n"
            "  email: {url: \"smtp://127.0.0.1:%d\", from: a@test.invalid, to: [b@test.invalid], username: sqlbak,"
            " password_file: %s, on: [failure, health]}\n"
            "  webhook: {url: \"http://127.0.0.1:%d/hook\", token_file: %s, on: [failure, health]}\n") % (
                self.port, json.dumps(files["http_token"]), dead, json.dumps(files["smtp_password"]), dead,
                json.dumps(files["webhook_token"]))
        self.env.write_config(text)

    def assertNoSecret(self, text, where):
        for name, value in self.secrets.items():
            self.assertNotIn(value, text, "%s appears in %s" % (name, where))

    def http_get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + self.secrets["http_token"]})
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def test_no_secret_in_status_health_api_metrics_log_or_catalog(self):
        d = self.start_daemon()
        d.wait_log(r"HTTP: dashboard, JSON API and /metrics on http://127\.0\.0\.1:%d/" % self.port)
        rc, out, err = d.ctl("--json", "backup", "--wait", "shop", "notes")
        self.assertNoSecret(out + err, "backup --wait")
        doc = json.loads(out)
        # The S3 target refuses: shop's backup fails; notes' works.
        self.assertEqual([e["database"] for e in doc["errors"]], ["shop"], "%r\n%s" % (doc, d.describe()))
        self.assertEqual([b["database"] for b in doc["backups"]], ["notes"], doc)

        def channels_failed():
            st = d.ctl_json("status", check=0)
            return len([c for c in st.get("alerts", []) if c.get("consecutive_failures", 0) > 0]) == 2
        T.wait_until(channels_failed, what="both alert channels to have failed")

        outputs = {}
        for args in (("status",), ("health",), ("list",), ("report",), ("verify", "--all"),
                     ("rotate", "--dry-run"), ("show", doc["backups"][0]["id"])):
            rc, out, err = d.ctl("--json", *args)
            outputs["sqlbakctl " + " ".join(args)] = out + err
            rc, out, err = d.ctl(*args)
            outputs["sqlbakctl (text) " + " ".join(args)] = out + err
        for path in ("/", "/api/status", "/api/backups", "/api/report", "/api/health", "/metrics"):
            # Some answer with the S3 target's failure (/api/backups: 400): also checked.
            status, body = self.http_get(path)
            self.assertNotIn(status, (401, 403), path)
            outputs["GET " + path] = body
        for args in (("--offline", "list"), ("--offline", "backup", "shop"), ("--offline", "health"),
                     ("config", "check"), ("alert", "test")):
            rc, out, err = T.run_ctl(["-c", self.env.config] + list(args))
            outputs["sqlbakctl " + " ".join(args)] = out + err
        for where, text in outputs.items():
            self.assertNoSecret(text, where)
        # The failures were seen, and said what failed.
        self.assertIn("offsite", outputs["sqlbakctl status"] + outputs["sqlbakctl health"])

        self.assertEqual(d.stop(), 0)
        log = d.log()
        self.assertIn("backup failed", log)
        self.assertNoSecret(log, "the daemon log")
        with sqlite3.connect(os.path.join(self.env.state, "catalog.db")) as con:
            rows = con.execute("SELECT * FROM jobs").fetchall()
        self.assertTrue(rows)
        self.assertNoSecret(json.dumps(rows, default=str), "the catalog")


if __name__ == "__main__":
    T.main()
