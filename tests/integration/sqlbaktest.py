"""Shared helpers for the sqlbak integration tests.

The tests drive the real `sqlbakctl --offline` binary (path in $SQLBAKCTL) and use
the `sqlite3` command-line shell (path in $SQLITE3, default "sqlite3") as the
reference peer. Standard library only.

Every test creates its files inside a TempEnv (a tempfile.mkdtemp directory) that
is removed in tearDown / cleanup even when the test fails; processes and mounts a
test starts are registered with the TempEnv and killed / unmounted there too.
"""

import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

# Generous per-command limit: a hung command fails the test instead of hanging CTest.
COMMAND_TIMEOUT = float(os.environ.get("SQLBAK_TEST_COMMAND_TIMEOUT", "600"))

# Markers of a crash or an uncaught exception in a C++ program.
CRASH_MARKERS = (
    "terminate called",
    "what():",
    "Segmentation fault",
    "Aborted",
    "AddressSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "Assertion `",
    "core dumped",
    "Traceback (most recent call last)",
)

BACKUP_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def _find_ctl():
    path = os.environ.get("SQLBAKCTL")
    if path:
        return path
    for cand in (os.path.join(SOURCE_ROOT, "build", "ctl", "sqlbakctl"),
                 os.path.join(SOURCE_ROOT, "build", "sqlbakctl")):
        if os.path.exists(cand):
            return cand
    return os.path.join(SOURCE_ROOT, "build", "ctl", "sqlbakctl")


SQLBAKCTL = _find_ctl()
SQLITE3 = os.environ.get("SQLITE3", "sqlite3")


def seed():
    """The random seed of this run ($SQLBAK_TEST_SEED to reproduce), printed once."""
    s = os.environ.get("SQLBAK_TEST_SEED")
    if s is None:
        s = str(random.SystemRandom().randrange(1 << 32))
        os.environ["SQLBAK_TEST_SEED"] = s
        sys.stderr.write("SQLBAK_TEST_SEED=%s\n" % s)
    return int(s)


def require_binaries(testcase=None):
    if not os.path.exists(SQLBAKCTL):
        raise AssertionError("sqlbakctl not found at %r (set $SQLBAKCTL)" % SQLBAKCTL)
    if shutil.which(SQLITE3) is None:
        raise AssertionError("sqlite3 shell not found (%r); set $SQLITE3" % SQLITE3)


def fmt_cmd(args):
    return " ".join(_shquote(a) for a in args)


def _shquote(s):
    s = str(s)
    if re.fullmatch(r"[A-Za-z0-9_./:=@+,-]+", s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def describe(args, rc, out, err):
    return "command: %s\nexit: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        fmt_cmd(args), rc, out[-6000:], err[-6000:])


def run_ctl(args, check=None, timeout=None, env=None):
    """Runs sqlbakctl ARGS; returns (rc, stdout, stderr).

    check: None (no check) or the expected exit status (AssertionError otherwise,
    with the command and its output in the message).
    """
    cmd = [SQLBAKCTL] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=timeout or COMMAND_TIMEOUT, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("command timed out after %ss: %s\n%s\n%s" % (
            e.timeout, fmt_cmd(cmd), e.stdout, e.stderr))
    rc, out, err = p.returncode, p.stdout, p.stderr
    if check is not None and rc != check:
        raise AssertionError("expected exit %s\n%s" % (check, describe(cmd, rc, out, err)))
    return rc, out, err


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def faketime_env(unix_seconds, base=None):
    """Environment that makes a program see wall-clock time start at UNIX_SECONDS
    (libfaketime, from Debian's faketime package). SkipTest when it is missing."""
    if not os.path.exists(FAKETIME_LIB):
        raise unittest.SkipTest("libfaketime is not installed (package faketime)")
    env = dict(base if base is not None else os.environ)
    env["LD_PRELOAD"] = FAKETIME_LIB
    env["FAKETIME"] = "@" + datetime.datetime.fromtimestamp(
        unix_seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    env["TZ"] = env.get("TZ", "UTC")
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    # AddressSanitizer wants to be the first library loaded; LD_PRELOAD comes first.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


def fast_clock_env(speed, base=None):
    """Environment in which a program's clocks (wall and monotonic) and sleeps run
    SPEED times faster (libfaketime), for waits of a minute that a test must see
    end. SkipTest when libfaketime is missing."""
    if not os.path.exists(FAKETIME_LIB):
        raise unittest.SkipTest("libfaketime is not installed (package faketime)")
    env = dict(base if base is not None else os.environ)
    env["LD_PRELOAD"] = FAKETIME_LIB
    env["FAKETIME"] = "+0 x%d" % speed
    env.pop("FAKETIME_DONT_FAKE_MONOTONIC", None)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


def fault_shim_path():
    """The LD_PRELOAD shim of tests/tools/fault_inject.c (build target fault_inject)."""
    tools = os.environ.get("SQLBAK_TOOLS_DIR") or os.path.join(SOURCE_ROOT, "build", "tests")
    return os.path.join(tools, "libfault_inject.so")


def fault_env(target, log, ops, action="eio", nth=1, count=1, path=None, magic=None, trace=False,
              base=None):
    """Environment that runs a program under the fault shim: the NTH.. calls of the
    families OPS on files under TARGET get ACTION; LOG receives the shim's lines."""
    shim = fault_shim_path()
    if not os.path.exists(shim):
        raise AssertionError("fault injection shim not found at %s (build target fault_inject; "
                             "set $SQLBAK_TOOLS_DIR)" % shim)
    env = dict(base if base is not None else os.environ)
    env["LD_PRELOAD"] = (shim + " " + env.get("LD_PRELOAD", "")).strip()
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    env.update({"SQLBAK_FAULT_DIR": target, "SQLBAK_FAULT_OPS": ops,
                "SQLBAK_FAULT_ACTION": action, "SQLBAK_FAULT_NTH": str(nth),
                "SQLBAK_FAULT_COUNT": str(count), "SQLBAK_FAULT_LOG": log,
                "SQLBAK_FAULT_TRACE": "1" if trace else "0"})
    if path:
        env["SQLBAK_FAULT_PATH"] = path
    if magic:
        env["SQLBAK_FAULT_MAGIC"] = magic
    if os.path.exists(log):
        os.unlink(log)
    return env


def fault_log(log):
    """The shim's log lines as (kind, seq, op, path): kind is 'match' or 'fault'."""
    if not os.path.exists(log):
        return []
    out = []
    with open(log) as f:
        for line in f:
            kind, seq, op, rest = line.rstrip("\n").split(" ", 3)
            out.append((kind, int(seq), op, rest.rsplit(" ", 1)[0]))
    return out


def assert_no_crash(rc, out, err, args=()):
    if rc is not None and rc < 0:
        raise AssertionError("killed by signal %d\n%s" % (-rc, describe(args, rc, out, err)))
    if rc is not None and rc > 3:
        # sqlbakctl only uses 0..3 (health uses the same range).
        raise AssertionError("unexpected exit status %d\n%s" % (rc, describe(args, rc, out, err)))
    for m in CRASH_MARKERS:
        if m in err or m in out:
            raise AssertionError("crash marker %r in output\n%s" % (m, describe(args, rc, out, err)))


def run_sqlite3(path, *sql_or_dot, check=True, input=None):
    cmd = [SQLITE3, "-batch", str(path)] + list(sql_or_dot)
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                       timeout=COMMAND_TIMEOUT, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("sqlite3 failed\n%s" % describe(cmd, p.returncode, p.stdout, p.stderr))
    return p.stdout


def dump(path):
    """`sqlite3 PATH .dump` as text."""
    return run_sqlite3(path, ".dump")


def schema(path):
    return run_sqlite3(path, ".schema")


def pragma(path, name):
    """The value of PRAGMA NAME on PATH (via the sqlite3 shell), stripped."""
    return run_sqlite3(path, "PRAGMA %s;" % name).strip()


def integrity_check(path):
    return run_sqlite3(path, "PRAGMA integrity_check;").strip()


def master_rows(path):
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        con.close()


def connect(path, timeout=10.0):
    con = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    return con


def create_db(path, page_size=4096, journal_mode="delete", auto_vacuum=None, script=None,
              rows=0, row_bytes=100, table="t"):
    """Creates a database at PATH.

    Sets page_size and auto_vacuum before anything is written, runs SCRIPT (SQL) if
    given, inserts ROWS rows of randomblob(ROW_BYTES) into TABLE (created when ROWS>0),
    then sets JOURNAL_MODE. Returns PATH.
    """
    con = connect(path)
    try:
        con.execute("PRAGMA page_size=%d" % page_size)
        if auto_vacuum is not None:
            con.execute("PRAGMA auto_vacuum=%s" % auto_vacuum)
        con.execute("PRAGMA journal_mode=delete")
        if script:
            con.executescript(script)
        if rows:
            fill(con, rows, row_bytes, table=table)
        mode = con.execute("PRAGMA journal_mode=%s" % journal_mode).fetchone()[0]
        if mode.lower() != journal_mode.lower():
            raise AssertionError("could not set journal_mode=%s on %s (got %s)" %
                                 (journal_mode, path, mode))
        got = con.execute("PRAGMA page_size").fetchone()[0]
        if got != page_size:
            raise AssertionError("page_size %d requested, %d set" % (page_size, got))
    finally:
        con.close()
    return path


def fill(con, rows, row_bytes, table="t"):
    con.execute("CREATE TABLE IF NOT EXISTS %s(id INTEGER PRIMARY KEY, n INTEGER, b BLOB)" % table)
    con.execute("BEGIN")
    con.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
        "INSERT INTO %s(n, b) SELECT x, randomblob(?) FROM c" % table, (rows, row_bytes))
    con.execute("COMMIT")


def db_digest(path):
    """A SHA-256 over the schema and every row of every table, in rowid order."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        h = hashlib.sha256()
        tables = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table' ORDER BY name").fetchall()
        for name, sql in tables:
            h.update(b"T" + name.encode() + b"\0" + (sql or "").encode() + b"\0")
            if name.startswith("sqlite_"):
                continue
            q = '"%s"' % name.replace('"', '""')
            ncols = len(con.execute("SELECT * FROM %s LIMIT 0" % q).description)
            without_rowid = "without rowid" in re.sub(r"\s+", " ", (sql or "").lower())
            order = ", ".join(str(i + 1) for i in range(ncols)) if without_rowid else "rowid"
            cur = con.execute("SELECT * FROM %s ORDER BY %s" % (q, order))
            for row in cur:
                for v in row:
                    if v is None:
                        h.update(b"N")
                    elif isinstance(v, bytes):
                        h.update(b"B%d:" % len(v))
                        h.update(v)
                    elif isinstance(v, str):
                        e = v.encode()
                        h.update(b"S%d:" % len(e))
                        h.update(e)
                    else:
                        h.update(b"V" + repr(v).encode() + b";")
                h.update(b"\n")
        for name in ("page_size", "auto_vacuum", "user_version", "application_id"):
            h.update(("%s=%s;" % (name, con.execute("PRAGMA %s" % name).fetchone()[0])).encode())
        return h.hexdigest()
    finally:
        con.close()


def files_under(root):
    """Relative paths of every regular file under ROOT, sorted."""
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, root))
    return sorted(out)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def parse_time(s):
    """Parses an ISO 8601 UTC timestamp from sqlbak output into an aware datetime."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    s = s.replace(" ", "T", 1)
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m and m.group(2):
        frac = (m.group(2) + "000000")[:7]
        s = m.group(1) + frac + m.group(3)
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d


def utc_iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def local_iso(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(t)))


_LIVE_ENVS = []


def _on_sigterm(signum, _frame):
    # Killed by a timeout: clean up what the tests started, then die of the signal.
    for env in list(_LIVE_ENVS):
        try:
            env.cleanup()
        except Exception:  # noqa: BLE001
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


class TempEnv:
    """A temporary directory with a sqlbak config, a local target and a state_dir.

    Layout: ROOT/config.yaml, ROOT/repo (target "local"), ROOT/state, ROOT/db,
    ROOT/out (restores). Call cleanup() (or use as a context manager / addCleanup).
    """

    def __init__(self, databases=None, step_pages=None, compression=None, verify=None,
                 extra_defaults=None, target_path=None, create_target=True, prefix="sqlbak-it-"):
        self.root = tempfile.mkdtemp(prefix=prefix)
        _LIVE_ENVS.append(self)
        self.procs = []
        self.mounts = []
        self.config = os.path.join(self.root, "config.yaml")
        self.target = target_path or os.path.join(self.root, "repo")
        self.state = os.path.join(self.root, "state")
        self.dbdir = os.path.join(self.root, "db")
        self.out = os.path.join(self.root, "out")
        for d in (self.state, self.dbdir, self.out):
            os.makedirs(d, exist_ok=True)
        if create_target:
            os.makedirs(self.target, exist_ok=True)
        self.databases = dict(databases or {})
        self.step_pages = step_pages
        self.compression = compression
        self.verify = verify
        self.extra_defaults = dict(extra_defaults or {})
        # Per-database settings: {name: {key: raw YAML value}} (written under the database).
        self.db_settings = {}
        self.write_config()

    # --- lifecycle -----------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        if self in _LIVE_ENVS:
            _LIVE_ENVS.remove(self)
        for p in self.procs:
            try:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        p.kill()
                p.wait(timeout=30)
                for f in (p.stdin, p.stdout, p.stderr):
                    if f:
                        f.close()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        self.procs = []
        for m in reversed(self.mounts):
            subprocess.run(["umount", m], capture_output=True)
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", m], capture_output=True)
        self.mounts = []
        # Make everything removable again (tests chmod things).
        for dirpath, dirs, files in os.walk(self.root):
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                try:
                    if not os.path.islink(p):
                        os.chmod(p, 0o700 if os.path.isdir(p) else 0o600)
                except OSError:
                    pass
        try:
            os.chmod(self.root, 0o700)
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def spawn(self, args, **kw):
        """Popen in its own session, registered for cleanup."""
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen([str(a) for a in args], **kw)
        self.procs.append(p)
        return p

    def mount_tmpfs(self, path, size):
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot mount tmpfs at %s: %s" % (path, r.stderr.strip()))
        self.mounts.append(path)
        return path

    # --- config -------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def db_path(self, name):
        return os.path.join(self.dbdir, name + ".db")

    def add_database(self, name, path=None):
        self.databases[name] = path or self.db_path(name)
        self.write_config()
        return self.databases[name]

    def config_text(self):
        lines = [
            "# written by tests/integration/sqlbaktest.py",
            "socket: %s" % json.dumps(os.path.join(self.root, "control.sock")),
            "state_dir: %s" % json.dumps(self.state),
            "defaults:",
            "  targets: [local]",
        ]
        if self.step_pages is not None:
            lines.append("  step_pages: %d" % self.step_pages)
        if self.compression is not None:
            lines.append("  compression: {algorithm: %s}" % self.compression)
        if self.verify is not None:
            lines.append("  verify: %s" % self.verify)
        for k, v in self.extra_defaults.items():
            lines.append("  %s: %s" % (k, v))
        lines += [
            "targets:",
            "  local: {type: local, path: %s}" % json.dumps(self.target),
        ]
        if self.databases:
            lines.append("databases:")
            for name, path in self.databases.items():
                lines.append("  - name: %s" % name)
                lines.append("    path: %s" % json.dumps(path))
                for k, v in getattr(self, "db_settings", {}).get(name, {}).items():
                    lines.append("    %s: %s" % (k, v))
        else:
            lines.append("databases: []")
        return "\n".join(lines) + "\n"

    def write_config(self, text=None):
        with open(self.config, "w") as f:
            f.write(text if text is not None else self.config_text())

    # --- sqlbakctl --------------------------------------------------------------------

    def ctl_args(self, *args, json_out=False):
        a = ["-c", self.config, "--offline"]
        if json_out:
            a.append("--json")
        return a + [str(x) for x in args]

    def ctl(self, *args, check=None, json_out=False, timeout=None, env=None):
        """Runs `sqlbakctl -c CONFIG --offline [--json] ARGS`; returns (rc, out, err)."""
        a = self.ctl_args(*args, json_out=json_out)
        rc, out, err = run_ctl(a, check=check, timeout=timeout, env=env)
        assert_no_crash(rc, out, err, [SQLBAKCTL] + a)
        return rc, out, err

    def ctl_json(self, *args, check=0, timeout=None, env=None):
        a = self.ctl_args(*args, json_out=True)
        rc, out, err = run_ctl(a, check=check, timeout=timeout, env=env)
        assert_no_crash(rc, out, err, [SQLBAKCTL] + a)
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError("--json output is not one JSON document (%s)\n%s" % (
                e, describe([SQLBAKCTL] + a, rc, out, err)))

    def backup(self, *dbs, env=None):
        """Backs up DBS (all when empty); asserts success; returns the 'backups' list."""
        doc = self.ctl_json("backup", *dbs, check=0, env=env)
        if doc.get("errors"):
            raise AssertionError("backup reported errors: %r" % doc["errors"])
        backups = doc.get("backups")
        if not isinstance(backups, list) or not backups:
            raise AssertionError("backup --json without backups: %r" % doc)
        for b in backups:
            if not BACKUP_ID_RE.fullmatch(str(b.get("id", ""))):
                raise AssertionError("malformed backup id in %r" % b)
        return backups

    def backup_one(self, db, env=None):
        bs = self.backup(db, env=env)
        if len(bs) != 1:
            raise AssertionError("expected one backup of %s, got %r" % (db, bs))
        return bs[0]

    def list(self, *args):
        doc = self.ctl_json("list", *args, check=0)
        if not isinstance(doc.get("backups"), list):
            raise AssertionError("list --json without 'backups' list: %r" % doc)
        return doc["backups"]

    def list_ids(self, *args):
        return [b["id"] for b in self.list(*args)]

    def restore(self, backup_id, to=None, force=False, check=0):
        to = to or os.path.join(self.out, "%s-%d.db" % (backup_id, random.randrange(1 << 30)))
        args = ["restore", backup_id, "--to", to]
        if force:
            args.append("--force")
        self.ctl(*args, check=check)
        return to

    def restore_at(self, db, when, to=None, check=0):
        to = to or os.path.join(self.out, "%s-at-%d.db" % (db, random.randrange(1 << 30)))
        self.ctl("restore", db, "--at", when, "--to", to, check=check)
        return to

    def verify_all(self, check=0):
        return self.ctl("verify", "--all", check=check)


class EnvTestCase(unittest.TestCase):
    """Base class: self.env is a fresh TempEnv, cleaned up after every test."""

    env_kwargs = {}

    def setUp(self):
        require_binaries()
        self.rng = random.Random(seed() ^ int(hashlib.sha256(self.id().encode()).hexdigest()[:8], 16))
        self.env = TempEnv(**self.env_kwargs)
        self.addCleanup(self.env.cleanup)

    @staticmethod
    def error_text(out, err):
        """stderr (or stdout, in the SQLBAK_TEST_ERRORS_ON_STDOUT_OK triage mode)."""
        if os.environ.get("SQLBAK_TEST_ERRORS_ON_STDOUT_OK") and not err.strip():
            return out
        return err

    def assertClearError(self, rc, out, err, expected_rc=1, names=(), words=(), one_line=True,
                         args=None):
        """A failed command: exit EXPECTED_RC (int or tuple), no crash, a non-empty
        error on stderr containing every string in NAMES (case-sensitive) and at least
        one of WORDS (case-insensitive) when WORDS is given."""
        info = describe(args or ["sqlbakctl", "..."], rc, out, err)
        assert_no_crash(rc, out, err, args or [])
        ok_rcs = expected_rc if isinstance(expected_rc, tuple) else (expected_rc,)
        self.assertIn(rc, ok_rcs, "exit status\n" + info)
        if os.environ.get("SQLBAK_TEST_ERRORS_ON_STDOUT_OK") and not err.strip():
            # Triage aid only: look past errors printed on stdout instead of stderr.
            err = out
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertTrue(lines, "no error message on stderr\n" + info)
        if one_line:
            self.assertEqual(len(lines), 1, "error is not one line\n" + info)
        for n in names:
            self.assertIn(n, err, "error does not name %r\n%s" % (n, info))
        if words:
            low = err.lower()
            self.assertTrue(any(w.lower() in low for w in words),
                            "error mentions none of %r\n%s" % (words, info))



# =====================================================================================
# The daemon: sqlbakd processes, its control socket, and a fake systemd notify socket.
# =====================================================================================

import socket  # noqa: E402
import struct  # noqa: E402 (NotifyListener credentials)
import threading  # noqa: E402


def _find_daemon():
    path = os.environ.get("SQLBAKD")
    if path:
        return path
    for cand in (os.path.join(SOURCE_ROOT, "build", "daemon", "sqlbakd"),
                 os.path.join(SOURCE_ROOT, "build", "sqlbakd")):
        if os.path.exists(cand):
            return cand
    return os.path.join(SOURCE_ROOT, "build", "daemon", "sqlbakd")


SQLBAKD = _find_daemon()

# Every wait for a condition in the daemon tests polls up to this long.
DAEMON_WAIT = float(os.environ.get("SQLBAK_TEST_DAEMON_WAIT", "60"))


def require_daemon():
    require_binaries()
    if not os.path.exists(SQLBAKD):
        raise AssertionError("sqlbakd not found at %r (set $SQLBAKD)" % SQLBAKD)


def wait_until(predicate, timeout=None, interval=0.05, what="condition"):
    """Polls PREDICATE until it returns a true value (returned) or TIMEOUT passes
    (AssertionError naming WHAT; WHAT may be a callable giving the text)."""
    deadline = time.monotonic() + (DAEMON_WAIT if timeout is None else timeout)
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (
                DAEMON_WAIT if timeout is None else timeout, what() if callable(what) else what))
        time.sleep(interval)


# The control protocol (docs/PROTOCOL.md): JSON lines. Each message is one JSON object
# on one line ended by "\n" (at most 1 MiB before the newline); one request per
# connection; zero or more event lines, then one reply line, then the daemon closes.
MAX_LINE_BYTES = 1 << 20


def encode_frame(obj_or_bytes):
    """One protocol message: OBJ as a JSON line (bytes are sent as they are, plus "\n")."""
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return body + b"\n"


def decode_frames(data):
    """Splits DATA into parsed JSON lines; returns (messages, leftover bytes after the
    last newline). A line that is not JSON raises AssertionError."""
    frames = []
    while b"\n" in data:
        line, data = data.split(b"\n", 1)
        try:
            frames.append(json.loads(line.decode()))
        except ValueError as e:
            raise AssertionError("sqlbakd sent a line that is not JSON (%s): %r" % (e, line[:500]))
    return frames, data


def control_exchange(sock_path, data, timeout=None):
    """Connects to SOCK_PATH, sends DATA (bytes), reads until the daemon closes.

    Returns (frames, leftover, error): the parsed messages, bytes after the last whole
    line, and the OSError that ended the read, if any (None on a clean EOF)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(DAEMON_WAIT if timeout is None else timeout)
    try:
        s.connect(sock_path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may answer and close before reading everything
        buf = b""
        error = None
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                raise AssertionError("sqlbakd did not close the connection within %ss; got %r" % (
                    s.gettimeout(), buf[:2000]))
            except ConnectionResetError as e:
                error = e
                break
            if not chunk:
                break
            buf += chunk
        frames, leftover = decode_frames(buf)
        return frames, leftover, error
    finally:
        s.close()


def control_request(sock_path, command, args=None, v=1, timeout=None, request_id=None):
    """Sends one well-formed request; returns the list of messages received."""
    req = {"v": v, "command": command, "args": args if args is not None else {}}
    if request_id is not None:
        req["id"] = request_id
    frames, leftover, _err = control_exchange(sock_path, encode_frame(req), timeout=timeout)
    if leftover:
        raise AssertionError("trailing partial line from sqlbakd: %r" % leftover[:200])
    return frames


class NotifyListener:
    """A fake systemd: a Unix datagram socket collecting sd_notify messages.

    messages: list of dicts {"t": monotonic time, "pid": sender pid or None,
    "text": the datagram, "fields": {KEY: VALUE}}, in arrival order.
    on_message: optional callable(msg) run in the collector thread, before the
    message is appended (so it sees the state of the world as the message arrives).
    """

    def __init__(self, path, on_message=None):
        self.path = path
        self.on_message = on_message
        self.messages = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._passcred = True
        except (AttributeError, OSError):
            self._passcred = False
        self._sock.bind(path)
        self._sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self):
        credsize = struct.calcsize("3i")
        while not self._stop:
            try:
                if self._passcred:
                    data, anc, _flags, _addr = self._sock.recvmsg(65536, socket.CMSG_SPACE(credsize))
                else:
                    data, anc = self._sock.recv(65536), []
            except socket.timeout:
                continue
            except OSError:
                if self._stop:
                    return
                continue
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == getattr(socket, "SCM_CREDENTIALS", -1):
                    pid = struct.unpack("3i", cdata[:credsize])[0]
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            msg = {"t": time.monotonic(), "pid": pid, "text": text, "fields": fields}
            if self.on_message:
                try:
                    self.on_message(msg)
                except Exception as e:  # noqa: BLE001 - recorded, the test reports it
                    msg["hook_error"] = repr(e)
            with self._cond:
                self.messages.append(msg)
                self._cond.notify_all()

    def snapshot(self):
        with self._cond:
            return list(self.messages)

    def with_field(self, key, value=None, since=0):
        """Messages (from index SINCE) having KEY (equal to VALUE when given)."""
        return [m for m in self.snapshot()[since:]
                if key in m["fields"] and (value is None or m["fields"][key] == value)]

    def wait_for(self, predicate, timeout=None, what="a notify message"):
        """Waits until PREDICATE(messages) is true; returns its value."""
        deadline = time.monotonic() + (DAEMON_WAIT if timeout is None else timeout)
        with self._cond:
            while True:
                v = predicate(list(self.messages))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s; notify messages so far:\n%s" % (
                        what, self.dump()))
                self._cond.wait(min(left, 0.5))

    def wait_field(self, key, value=None, since=0, count=1, timeout=None):
        """Waits for COUNT messages (from index SINCE) with KEY[=VALUE]; returns them."""
        def pred(msgs):
            hits = [m for m in msgs[since:]
                    if key in m["fields"] and (value is None or m["fields"][key] == value)]
            return hits if len(hits) >= count else None
        return self.wait_for(pred, timeout=timeout, what="%d x %s%s" % (
            count, key, "" if value is None else "=" + value))

    def dump(self):
        out = []
        for i, m in enumerate(list(self.messages)):
            out.append("  #%d t=%.3f pid=%s %r" % (i, m["t"], m["pid"], m["text"]))
        return "\n".join(out) if out else "  (none)"

    def close(self):
        self._stop = True
        self._thread.join(timeout=10)
        try:
            self._sock.close()
        except OSError:
            pass


class DaemonProcess:
    """One sqlbakd started on ENV's config (or CONFIG), stderr and stdout to a log file
    in ENV's directory. Killed by ENV.cleanup() (registered through ENV.spawn).

    notify: path of a NotifyListener socket to pass as NOTIFY_SOCKET.
    watchdog_usec: sets WATCHDOG_USEC, and starts sqlbakd through
      `sh -c 'WATCHDOG_PID=$$ exec sqlbakd ...'` so that WATCHDOG_PID is its own pid.
    extra_env: more environment variables (None values remove a variable).
    """

    _counter = 0

    def __init__(self, env, config=None, notify=None, watchdog_usec=None, extra_env=None,
                 socket_path=None):
        DaemonProcess._counter += 1
        self.env = env
        self.config = config or env.config
        self.socket = socket_path or os.path.join(env.root, "control.sock")
        self.log_path = os.path.join(env.root, "sqlbakd-%d.log" % DaemonProcess._counter)
        penv = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                  "LISTEN_FDS", "LISTEN_PID"):
            penv.pop(k, None)
        if notify:
            penv["NOTIFY_SOCKET"] = notify
        args = [SQLBAKD, "-c", self.config]
        if watchdog_usec is not None:
            penv["WATCHDOG_USEC"] = str(watchdog_usec)
            args = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + args
        for k, v in (extra_env or {}).items():
            if v is None:
                penv.pop(k, None)
            else:
                penv[k] = v
        self.args = args
        self._log = open(self.log_path, "wb")
        self.proc = env.spawn(args, stdin=subprocess.DEVNULL, stdout=self._log,
                              stderr=subprocess.STDOUT, env=penv)
        self._log.close()
        self.pid = self.proc.pid  # `exec` keeps the pid of the sh wrapper

    # --- state ------------------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def describe(self):
        return "sqlbakd (%s) pid %s, exit %s\n--- sqlbakd log ---\n%s" % (
            fmt_cmd(self.args), self.pid, self.proc.poll(), self.log()[-8000:])

    def running(self):
        return self.proc.poll() is None

    def wait_log(self, pattern, timeout=None, count=1):
        """Waits until the log matches the regex PATTERN COUNT times; returns the matches."""
        rx = re.compile(pattern)

        def found():
            m = rx.findall(self.log())
            return m if len(m) >= count else None
        return wait_until(found, timeout=timeout,
                          what=lambda: "%r (x%d) in the sqlbakd log\n%s" % (pattern, count, self.describe()))

    def wait_ready(self, timeout=None):
        """Waits until `status` answers on the control socket (fails if sqlbakd exits)."""
        def answers():
            if not self.running():
                raise AssertionError("sqlbakd exited during start-up\n" + self.describe())
            if not os.path.exists(self.socket):
                return False
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(self.socket)
            except OSError:
                return False  # not listening yet
            finally:
                s.close()
            try:
                frames = control_request(self.socket, "status", timeout=30)
            except OSError:
                return False
            except AssertionError as e:  # it answered, but not in the protocol
                raise AssertionError("sqlbakd answered `status` wrongly: %s\n%s" % (e, self.describe()))
            if not frames or frames[-1].get("ok") is not True:
                raise AssertionError("sqlbakd answered `status` with %r\n%s" % (frames, self.describe()))
            return True
        wait_until(answers, timeout=timeout, what=lambda: "sqlbakd to answer\n" + self.describe())
        return self

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout=None):
        """Waits for the exit; returns the exit status (AssertionError if it does not exit)."""
        try:
            return self.proc.wait(timeout=DAEMON_WAIT if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("sqlbakd did not exit within %ss\n%s" % (
                DAEMON_WAIT if timeout is None else timeout, self.describe()))

    def stop(self, timeout=None):
        """SIGTERM, then waits; returns the exit status."""
        if self.running():
            self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    # --- sqlbakctl through the daemon ---------------------------------------------------

    def ctl_args(self, *args, json_out=False):
        a = ["-s", self.socket, "-c", self.config]
        if json_out:
            a.append("--json")
        return a + [str(x) for x in args]

    def ctl(self, *args, check=None, json_out=False, timeout=None):
        """Runs `sqlbakctl -s SOCKET -c CONFIG [--json] ARGS` (through the daemon)."""
        a = self.ctl_args(*args, json_out=json_out)
        rc, out, err = run_ctl(a, check=None, timeout=timeout)
        assert_no_crash(rc, out, err, [SQLBAKCTL] + a)
        if check is not None and rc != check:
            raise AssertionError("expected exit %s\n%s\n%s" % (
                check, describe([SQLBAKCTL] + a, rc, out, err), self.describe()))
        return rc, out, err

    def ctl_json(self, *args, check=0, timeout=None):
        rc, out, err = self.ctl(*args, check=check, json_out=True, timeout=timeout)
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError("--json output is not one JSON document (%s)\n%s" % (
                e, describe([SQLBAKCTL] + self.ctl_args(*args, json_out=True), rc, out, err)))

    def status(self):
        return self.ctl_json("status")

    def list_ids(self, *args):
        doc = self.ctl_json("list", *args)
        if not isinstance(doc.get("backups"), list):
            raise AssertionError("list --json without 'backups' list: %r" % doc)
        return [b["id"] for b in doc["backups"]]


def start_daemon(env, ready=True, **kw):
    """Starts sqlbakd on ENV (see DaemonProcess) and, when READY, waits until it answers."""
    d = DaemonProcess(env, **kw)
    if ready:
        d.wait_ready()
    return d


def make_slow_db(path, mib):
    """A database of about MIB MiB (4 KiB pages) of hex text: with step_pages 1 and zstd
    level 19 (SLOW_SETTINGS) its first backup takes a while. Returns PATH."""
    con = connect(path)
    try:
        con.execute("PRAGMA page_size=4096")
        con.execute("PRAGMA journal_mode=delete")
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, b TEXT)")
        con.execute("BEGIN")
        con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
                    "INSERT INTO t(b) SELECT hex(randomblob(500)) FROM c", (int(mib * 1000),))
        con.execute("COMMIT")
    finally:
        con.close()
    return path


# TempEnv(extra_defaults=SLOW_SETTINGS) or env.db_settings[NAME] = SLOW_SETTINGS: small
# steps, slow compression.
SLOW_SETTINGS = {"step_pages": "1", "compression": "{algorithm: zstd, level: 19}"}


class DaemonTestCase(EnvTestCase):
    """EnvTestCase for tests of sqlbakd: checks that the daemon binary exists."""

    def setUp(self):
        require_daemon()
        super().setUp()

    def start_daemon(self, **kw):
        return start_daemon(self.env, **kw)

    def slow_db(self, name, mib):
        """Adds database NAME (a make_slow_db of MIB MiB) with SLOW_SETTINGS."""
        path = make_slow_db(self.env.db_path(name), mib)
        self.env.db_settings[name] = dict(SLOW_SETTINGS)
        self.env.add_database(name, path)
        return path

    def small_db(self, name, rows=50):
        path = create_db(self.env.db_path(name), rows=rows, row_bytes=200)
        self.env.add_database(name, path)
        return path


def _shard():
    """(I, N) from SQLBAK_TEST_SHARD=I/N (1 <= I <= N), or None when unset."""
    spec = os.environ.get("SQLBAK_TEST_SHARD", "").strip()
    if not spec:
        return None
    m = re.fullmatch(r"([0-9]+)/([0-9]+)", spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        sys.stderr.write("SQLBAK_TEST_SHARD must be I/N with 1 <= I <= N, not %r\n" % spec)
        sys.exit(2)
    return int(m.group(1)), int(m.group(2))


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def main():
    """Runs the calling script's tests; with SQLBAK_TEST_SHARD=I/N only every Nth
    of them (by name), from the Ith: CTest runs the longest scripts as several
    tests (tests/integration/CMakeLists.txt) so that they spread over the cores."""
    seed()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_sigterm)
    shard = _shard()
    if shard is None:
        unittest.main(verbosity=2)
        return
    index, count = shard
    tests = sorted(_flatten(unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])),
                   key=lambda t: t.id())
    mine = tests[index - 1::count]
    sys.stderr.write("shard %d/%d: %d of %d tests\n" % (index, count, len(mine), len(tests)))
    if not mine:
        sys.stderr.write("shard %d/%d has no test: fewer tests than shards\n" % (index, count))
        sys.exit(1)
    result = unittest.TextTestRunner(verbosity=2).run(unittest.TestSuite(mine))
    sys.exit(0 if result.wasSuccessful() else 1)
