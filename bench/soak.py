#!/usr/bin/env python3
"""Soak test: the real sqlbakd for a long time under steady write load.

    bench/soak.py [--minutes 60] [--build DIR] [--report FILE] [--workdir DIR] [--keep]

Several writer processes (tests/integration/bank_writer.py, which keeps an invariant)
commit in bursts into three databases (two in WAL mode, one in rollback-journal mode)
while sqlbakd backs each up every minute (`schedule: "*:*:00"`), rotates them every
few minutes with a retention policy that removes backups, and runs its scheduled
verification every few minutes. Every 10 s the daemon's RSS and open file
descriptors are sampled from /proc; every 30 s `sqlbakctl status` goes over the
control socket. At the end the writers stop, the newest backups and a few older ones
of each database are restored with `sqlbakctl restore`, and each restored file must
pass `PRAGMA integrity_check` and the writers' invariants (SUM(balance) constant,
count(log) = max(log.n) = meta.counter, counters growing with backup time and never
beyond the source's).

The report (JSON to --report, text on stdout) gives backups made/failed, rotations,
verifications, restores checked, max RSS, RSS and fd count at start/middle/end with
a least-squares slope (is it flat?), and every warning/error line of the daemon log.
Exit status: 0 everything held, 1 a check failed, 2 usage error or missing binary.
This is a benchmark, not a test: it is not part of ctest. Standard library only.
"""

import argparse
import collections
import datetime
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
WRITER = os.path.join(SOURCE_ROOT, "tests", "integration", "bank_writer.py")

ACCOUNTS = 200
INITIAL_BALANCE = 1000
SAMPLE_INTERVAL = 10.0
STATUS_INTERVAL = 30.0
BASELINE_WINDOW = 120.0

# name -> journal mode
DATABASES = collections.OrderedDict([("bank_wal", "wal"), ("bank_journal", "delete"), ("shop_wal", "wal")])


def log(msg):
    sys.stderr.write("%s soak: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- databases ---------------------------------------------------------------------

def create_bank(path, mode):
    """The schema of tests/integration/test_concurrent.py, ~6 MiB of filler."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA page_size=4096")
        con.executescript("""
            CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
            CREATE TABLE meta(id INTEGER PRIMARY KEY, counter INTEGER NOT NULL);
            CREATE TABLE log(id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE, a INTEGER,
                             b INTEGER, amount INTEGER, pad BLOB);
            CREATE INDEX log_a ON log(a);
            CREATE TABLE filler(id INTEGER PRIMARY KEY, n INTEGER, b BLOB);
            INSERT INTO meta VALUES (1, 0);
        """)
        con.execute("BEGIN")
        con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1500) "
                    "INSERT INTO filler(n, b) SELECT x, randomblob(4000) FROM c")
        con.executemany("INSERT INTO accounts VALUES (?, ?)",
                        [(i, INITIAL_BALANCE) for i in range(1, ACCOUNTS + 1)])
        con.execute("COMMIT")
        got = con.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
        if got != mode:
            raise RuntimeError("could not set journal_mode=%s on %s (got %s)" % (mode, path, got))
    finally:
        con.close()


def check_bank(path):
    """Returns (counter, problems): the invariants and integrity_check of PATH."""
    problems = []
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    try:
        ic = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
        if ic != ["ok"]:
            problems.append("integrity_check: %s" % "; ".join(ic[:5]))
        total, count = con.execute("SELECT sum(balance), count(*) FROM accounts").fetchone()
        counter = con.execute("SELECT counter FROM meta WHERE id = 1").fetchone()[0]
        logs, max_n = con.execute("SELECT count(*), coalesce(max(n), 0) FROM log").fetchone()
    finally:
        con.close()
    if count != ACCOUNTS:
        problems.append("%d accounts, expected %d" % (count, ACCOUNTS))
    if total != ACCOUNTS * INITIAL_BALANCE:
        problems.append("SUM(balance) = %s, expected %d" % (total, ACCOUNTS * INITIAL_BALANCE))
    if logs != counter or max_n != counter:
        problems.append("count(log) = %d, max(log.n) = %d, meta.counter = %d" % (logs, max_n, counter))
    return counter, problems


# ---- writers -----------------------------------------------------------------------

class WriterSlot(threading.Thread):
    """Runs bank_writer.py on DB in bursts (BURST s of commits, then PAUSE s of quiet)
    until stop is set. Each burst is a fresh process stopped through its stop file,
    so a writer never dies inside a transaction."""

    def __init__(self, workdir, db, index, seed, burst, pause, stop_event):
        super().__init__(name="writer-%s-%d" % (os.path.basename(db), index), daemon=True)
        self.db, self.index, self.rng = db, index, random.Random(seed)
        self.burst, self.pause, self.stop_event = burst, pause, stop_event
        self.stop_file = os.path.join(workdir, "stop-%s-%d" % (os.path.basename(db), index))
        self.ready_file = self.stop_file.replace("stop-", "ready-")
        self.commits = self.busy = self.bursts = 0
        self.errors = []

    def run(self):
        # Start staggered, so the writers of one database do not all burst together.
        self.stop_event.wait(self.rng.uniform(0, self.pause))
        while not self.stop_event.is_set():
            for f in (self.stop_file, self.ready_file):
                if os.path.exists(f):
                    os.unlink(f)
            p = subprocess.Popen(
                [sys.executable, WRITER, self.db, self.stop_file, self.ready_file,
                 str(self.rng.randrange(1 << 31))],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, preexec_fn=lambda: os.nice(10))
            self.stop_event.wait(self.rng.uniform(0.5, 1.5) * self.burst)
            open(self.stop_file, "w").close()
            try:
                out, err = p.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                self.errors.append("writer did not stop within 300 s")
            self.bursts += 1
            if p.returncode != 0:
                self.errors.append("writer exit %s: %s" % (p.returncode, err.strip()[-500:]))
            else:
                try:
                    doc = json.loads(out.strip().splitlines()[-1])
                    self.commits += doc["commits"]
                    self.busy += doc["busy"]
                except (ValueError, IndexError, KeyError) as e:
                    self.errors.append("writer output not understood (%s): %r" % (e, out[-200:]))
            self.stop_event.wait(self.rng.uniform(0.5, 1.5) * self.pause)


# ---- daemon --------------------------------------------------------------------------

def read_proc(pid):
    """RSS, peak RSS (KiB), open fds and threads of PID, or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    kib = lambda k: int(fields.get(k, "0 kB").split()[0])  # noqa: E731
    return {"rss_kib": kib("VmRSS"), "anon_kib": kib("RssAnon"), "hwm_kib": kib("VmHWM"), "fds": fds,
            "threads": int(fields.get("Threads", "0").strip())}


class Sampler(threading.Thread):
    def __init__(self, pid, t0, ctl, stop_event):
        super().__init__(name="sampler", daemon=True)
        self.pid, self.t0, self.ctl, self.stop_event = pid, t0, ctl, stop_event
        self.samples = []
        self.status_ok = self.status_failed = 0
        self.status_errors = []

    def run(self):
        next_status = time.monotonic()
        while True:
            s = read_proc(self.pid)
            if s is not None:
                s["t"] = round(time.monotonic() - self.t0, 1)
                self.samples.append(s)
            if time.monotonic() >= next_status:
                next_status += STATUS_INTERVAL
                rc, out, err = self.ctl("status", timeout=120)
                if rc == 0:
                    self.status_ok += 1
                else:
                    self.status_failed += 1
                    self.status_errors.append("exit %s: %s" % (rc, err.strip()[-300:]))
            if self.stop_event.wait(SAMPLE_INTERVAL):
                return


def slope(points):
    """Least-squares slope of [(x, y)], or 0.0 with fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def trend(samples, key):
    """Start/middle/end values and slopes (per hour) of KEY, over the whole run and
    over its second half (after warm-up: caches, the pool's threads, the catalog)."""
    if not samples:
        return {}
    pts = [(s["t"] / 3600.0, s[key]) for s in samples]
    half = [p for p in pts if p[0] >= pts[-1][0] / 2]
    second_half_span = (half[-1][0] - half[0][0]) if half else 0.0
    slope_half = slope(half)
    return {
        "start": pts[0][1], "middle": pts[len(pts) // 2][1], "end": pts[-1][1],
        "min": min(y for _, y in pts), "max": max(y for _, y in pts),
        "slope_per_hour": round(slope(pts), 2),
        "second_half_slope_per_hour": round(slope_half, 2),
        "second_half_fitted_change": round(slope_half * second_half_span, 2),
    }


def baseline(samples, window_s):
    """The least anonymous RSS in each WINDOW_S seconds: what the daemon holds
    between jobs. A job's own peak grows with the databases (the soak's writers
    make them ~75x bigger in an hour) and says nothing about a leak; memory kept
    after jobs end does."""
    windows = collections.OrderedDict()
    for s in samples:
        w = int(s["t"] // window_s)
        if w not in windows or s["anon_kib"] < windows[w]["anon_kib"]:
            windows[w] = {"t": s["t"], "anon_kib": s["anon_kib"]}
    return list(windows.values())


class Soak:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.work = args.workdir or tempfile.mkdtemp(prefix="sqlbak-soak-")
        os.makedirs(self.work, exist_ok=True)
        self.bin = os.path.join(self.work, "bin")
        self.state = os.path.join(self.work, "state")
        self.repo = os.path.join(self.work, "repo")
        self.dbdir = os.path.join(self.work, "db")
        self.out = os.path.join(self.work, "restored")
        for d in (self.bin, self.state, self.repo, self.dbdir, self.out):
            os.makedirs(d, exist_ok=True)
        self.config = os.path.join(self.work, "sqlbak.yaml")
        self.socket = os.path.join(self.work, "control.sock")
        self.daemon_log = os.path.join(self.work, "sqlbakd.log")
        self.problems = []
        self.daemon = None

    # -- set-up --

    def copy_binaries(self):
        # Copies, so that a rebuild of the tree during a long run changes nothing here.
        for rel, name in (("daemon/sqlbakd", "sqlbakd"), ("ctl/sqlbakctl", "sqlbakctl")):
            src = os.path.join(self.build, rel)
            if not os.path.exists(src):
                sys.stderr.write("soak: %s not found (build first, or pass --build DIR)\n" % src)
                sys.exit(2)
            shutil.copy2(src, os.path.join(self.bin, name))
        self.sqlbakd = os.path.join(self.bin, "sqlbakd")
        self.sqlbakctl = os.path.join(self.bin, "sqlbakctl")

    def write_config(self):
        a = self.args
        lines = [
            "# written by bench/soak.py",
            "socket: %s" % json.dumps(self.socket),
            "state_dir: %s" % json.dumps(self.state),
            "workers: 2",
            "defaults:",
            '  schedule: "*:*:00"',
            '  rotate: "*:0/%d:30"' % a.rotate_every,
            '  verify_schedule: "*:0/%d:40"' % a.verify_every,
            "  verify_latest: 2",
            "  verify: integrity",
            "  retention: {keep_last: %d, keep_hourly: 2, keep_daily: 0, keep_weekly: 0, "
            "keep_monthly: 0, keep_yearly: 0, keep_within: 0s}" % a.keep_last,
            "  max_age: 10m",
            "  targets: [local]",
            "targets:",
            "  local: {type: local, path: %s}" % json.dumps(self.repo),
            "databases:",
        ]
        for name in DATABASES:
            lines += ["  - name: %s" % name, "    path: %s" % json.dumps(self.db_path(name))]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def db_path(self, name):
        return os.path.join(self.dbdir, name + ".db")

    def ctl(self, *args, timeout=600):
        cmd = [self.sqlbakctl, "-c", self.config, "--json"] + [str(x) for x in args]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", "timed out after %ss: %s" % (timeout, " ".join(cmd))
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args, timeout=600):
        rc, out, err = self.ctl(*args, timeout=timeout)
        if rc != 0:
            raise RuntimeError("sqlbakctl %s: exit %s: %s" % (" ".join(map(str, args)), rc, err.strip()))
        return json.loads(out)

    def start_daemon(self):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            env.pop(k, None)
        logf = open(self.daemon_log, "wb")
        self.daemon = subprocess.Popen([self.sqlbakd, "-c", self.config], stdin=subprocess.DEVNULL,
                                       stdout=logf, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("sqlbakd exited at start (%s):\n%s" % (self.daemon.returncode, self.read_log()[-3000:]))
            if os.path.exists(self.socket) and self.ctl("status", timeout=30)[0] == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("sqlbakd did not answer within 60 s:\n" + self.read_log()[-3000:])

    def read_log(self):
        try:
            with open(self.daemon_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def running_jobs(self):
        rc, out, _ = self.ctl("status", timeout=120)
        if rc != 0:
            return None
        return [d["name"] for d in json.loads(out).get("databases", []) if d.get("running")]

    # -- the run --

    def run(self):
        a = self.args
        self.copy_binaries()
        log("work directory %s" % self.work)
        for name, mode in DATABASES.items():
            create_bank(self.db_path(name), mode)
        self.write_config()
        started_wall = time.time()
        t0 = time.monotonic()
        self.start_daemon()
        log("sqlbakd pid %d up; running %d minute(s)" % (self.daemon.pid, a.minutes))

        stop_writers = threading.Event()
        rng = random.Random(a.seed)
        writers = []
        for name in DATABASES:
            for i in range(a.writers_per_db):
                writers.append(WriterSlot(self.work, self.db_path(name), i, rng.randrange(1 << 31),
                                          a.burst, a.pause, stop_writers))
        for w in writers:
            w.start()
        stop_sampling = threading.Event()
        sampler = Sampler(self.daemon.pid, t0, self.ctl, stop_sampling)
        sampler.start()

        deadline = t0 + a.minutes * 60
        last_progress = 0.0
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                self.problems.append("sqlbakd exited during the run with status %s" % self.daemon.returncode)
                break
            if sampler.samples and time.monotonic() - last_progress >= 300:
                last_progress = time.monotonic()
                s = sampler.samples[-1]
                log("%.0f/%d min: rss %s KiB, fds %s, commits %d" % (
                    (time.monotonic() - t0) / 60, a.minutes, s.get("rss_kib"), s.get("fds"),
                    sum(w.commits for w in writers)))
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))

        log("stopping the writers")
        stop_writers.set()
        for w in writers:
            w.join(timeout=400)
        # Let the jobs in progress end, so that the catalog and the repository are quiet.
        quiet_deadline = time.monotonic() + 600
        while self.daemon.poll() is None and time.monotonic() < quiet_deadline:
            jobs = self.running_jobs()
            if jobs == []:
                break
            time.sleep(2)
        stop_sampling.set()
        sampler.join(timeout=200)
        run_seconds = time.monotonic() - t0

        report = {"minutes": a.minutes, "started": utc(started_wall), "ended": utc(time.time()),
                  "run_seconds": round(run_seconds, 1), "work_directory": self.work,
                  "schedule": {"backup": "*:*:00", "rotate": "*:0/%d:30" % a.rotate_every,
                               "verify": "*:0/%d:40" % a.verify_every, "keep_last": a.keep_last,
                               "keep_hourly": 2}}
        report["writers"] = {
            "processes": len(writers), "bursts": sum(w.bursts for w in writers),
            "commits": sum(w.commits for w in writers), "busy": sum(w.busy for w in writers),
            "errors": [e for w in writers for e in w.errors]}
        for e in report["writers"]["errors"]:
            self.problems.append("writer: " + e)

        # Sources: the invariant after all writers have stopped.
        sources = {}
        commits_by_db = collections.Counter()
        for w in writers:
            commits_by_db[w.db] += w.commits
        for name in DATABASES:
            counter, probs = check_bank(self.db_path(name))
            sources[name] = {"counter": counter, "writer_commits": commits_by_db[self.db_path(name)],
                             "bytes": os.path.getsize(self.db_path(name)), "problems": probs}
            if counter != commits_by_db[self.db_path(name)]:
                probs.append("meta.counter %d but the writers committed %d" % (
                    counter, commits_by_db[self.db_path(name)]))
            self.problems += ["source %s: %s" % (name, p) for p in probs]
        report["sources"] = sources

        report["restores"] = self.check_restores(sources) if self.daemon.poll() is None else []
        report["jobs"] = self.catalog_counts()
        report["health"] = self.health()
        report["control_status_calls"] = {"ok": sampler.status_ok, "failed": sampler.status_failed,
                                          "errors": sampler.status_errors[:20]}
        if sampler.status_failed:
            self.problems.append("%d `sqlbakctl status` call(s) failed" % sampler.status_failed)

        exit_status = self.stop_daemon()
        report["daemon_exit_status"] = exit_status
        if exit_status != 0:
            self.problems.append("sqlbakd exited with status %s after SIGTERM" % exit_status)

        samples = sampler.samples
        # Two backup periods: every window holds a moment with no job running.
        held = baseline(samples, BASELINE_WINDOW)
        report["memory"] = {"max_rss_kib": max((s["hwm_kib"] for s in samples), default=0),
                            "rss_kib": trend(samples, "rss_kib"), "fds": trend(samples, "fds"),
                            "held_between_jobs_kib": trend(held, "anon_kib"),
                            "threads": trend(samples, "threads"), "samples": len(samples),
                            "series": [[s["t"], s["rss_kib"], s["anon_kib"], s["fds"], s["threads"]]
                                       for s in samples],
                            "series_columns": ["seconds", "rss_kib", "anon_kib", "fds", "threads"]}
        held_trend, fds = report["memory"]["held_between_jobs_kib"], report["memory"]["fds"]
        # Flat: after warm-up, the line fitted to the anonymous memory held between
        # jobs grows by less than 4 MiB or 5 %, and the fd count by less than 2.
        report["memory"]["rss_flat"] = bool(held_trend) and (
            held_trend["second_half_fitted_change"] < max(4096, 0.05 * held_trend["middle"]))
        report["memory"]["fds_flat"] = bool(fds) and fds["second_half_fitted_change"] < 2
        # The first minutes are warm-up (thread pool, compressors, page cache of
        # the catalog): a short run's slope says little.
        report["memory"]["judged"] = a.minutes >= 20
        if report["memory"]["judged"]:
            for key, what in (("rss_flat", "memory held between jobs"), ("fds_flat", "the open fd count")):
                if not report["memory"][key]:
                    self.problems.append("%s grows over the second half of the run" % what)
        report["log"] = self.log_summary(report)
        report["problems"] = self.problems
        report["ok"] = not self.problems
        return report

    def check_restores(self, sources):
        """Restores the newest backup of each database and a few older ones."""
        results = []
        try:
            listed = self.ctl_json("list")["backups"]
        except (RuntimeError, ValueError, KeyError) as e:
            self.problems.append("list: %s" % e)
            return results
        by_db = collections.defaultdict(list)
        for b in listed:
            by_db[b["database"]].append(b)
        for name in DATABASES:
            bs = sorted(by_db.get(name, []), key=lambda b: b["created_unix_ms"], reverse=True)
            if not bs:
                self.problems.append("no backup of %s is listed" % name)
                continue
            picks = [bs[0]]
            older = bs[1:]
            if older:
                step = max(1, len(older) // self.args.older_restores)
                picks += older[::step][: self.args.older_restores - 1] + [older[-1]]
            seen, ordered = set(), []
            for b in picks:
                if b["id"] not in seen:
                    seen.add(b["id"])
                    ordered.append(b)
            counters = []
            for b in ordered:
                to = os.path.join(self.out, "%s.db" % b["id"])
                t = time.monotonic()
                rc, _out, err = self.ctl("restore", b["id"], "--to", to)
                entry = {"database": name, "id": b["id"], "created": b["created"],
                         "restore_seconds": round(time.monotonic() - t, 2)}
                if rc != 0:
                    entry["problems"] = ["restore exit %s: %s" % (rc, err.strip()[-300:])]
                else:
                    entry["counter"], entry["problems"] = check_bank(to)
                    mode = os.stat(to).st_mode & 0o777
                    entry["mode"] = "%04o" % mode
                    if mode & 0o002:
                        entry["problems"].append("restored file is world-writable (%04o)" % mode)
                    counters.append((b["created_unix_ms"], entry["counter"], b["id"]))
                    if entry["counter"] > sources[name]["counter"]:
                        entry["problems"].append("counter %d beyond the source's %d" % (
                            entry["counter"], sources[name]["counter"]))
                    os.unlink(to)
                results.append(entry)
                self.problems += ["restore %s (%s): %s" % (b["id"], name, p) for p in entry["problems"]]
            counters.sort()
            for (t1, c1, i1), (t2, c2, i2) in zip(counters, counters[1:]):
                if c2 < c1:
                    self.problems.append("%s: backup %s (counter %d) is newer than %s (counter %d)" % (
                        name, i2, c2, i1, c1))
        return results

    def catalog_counts(self):
        counts = collections.defaultdict(dict)
        try:
            con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state, "catalog.db"), uri=True, timeout=60)
            try:
                for kind, result, n in con.execute(
                        "SELECT kind, result, count(*) FROM jobs GROUP BY kind, result"):
                    counts[kind][result] = n
                errors = con.execute("SELECT kind, \"database\", error FROM jobs WHERE result <> 'success' "
                                     "ORDER BY id LIMIT 20").fetchall()
            finally:
                con.close()
        except sqlite3.Error as e:
            self.problems.append("catalog: %s" % e)
            return {}
        out = {"by_kind": dict(counts), "failures": [{"kind": k, "database": d, "error": e} for k, d, e in errors]}
        for k, d, e in errors:
            self.problems.append("catalog: %s%s failed: %s" % (k, " of " + d if d else "", e))
        return out

    def health(self):
        rc, out, err = self.ctl("health", timeout=120)
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {"error": err.strip()}
        doc = {"exit_code": rc, "state": doc.get("state"), "summary": doc.get("summary")}
        if rc != 0:
            self.problems.append("health at the end: %s (%s)" % (doc.get("state"), doc.get("summary")))
        return doc

    def stop_daemon(self):
        if self.daemon is None:
            return None
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
                return "killed: no exit within 30 s of SIGTERM"
        return self.daemon.returncode

    def log_summary(self, report):
        text = self.read_log()
        lines = text.splitlines()
        made = re.findall(r"info: backup (\S+) of '([^']+)' on target", text)
        failed = [l for l in lines if "backup failed:" in l]
        skipped = [l for l in lines if "is due but one is already running: skipped" in l]
        rotations = re.findall(r"rotation of '[^']+' on target '[^']+': kept (\d+), removed (\d+)", text)
        verifies_ok = re.findall(r"scheduled verification of backup \S+ on target '[^']+': OK", text)
        verifies_bad = [l for l in lines if "scheduled verification of backup" in l and ": OK" not in l]
        bad = [l for l in lines if re.search(r" (error|critical|warning): ", l)
               or any(m in l for m in ("terminate called", "Segmentation", "AddressSanitizer", "Aborted"))]
        folded = collections.Counter(re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "ID", l[20:]) for l in bad)
        summary = {
            "backups_made": len(made), "backups_failed": len(failed), "scheduled_skipped": len(skipped),
            "rotations": len(rotations), "backups_removed": sum(int(r) for _k, r in rotations),
            "verifications_ok": len(verifies_ok), "verifications_failed": len(verifies_bad),
            "error_lines": len([l for l in bad if " warning: " not in l]),
            "warning_lines": len([l for l in bad if " warning: " in l]),
            "distinct_bad_lines": [{"count": n, "line": l} for l, n in folded.most_common(30)],
        }
        if failed:
            self.problems.append("%d backup(s) failed, e.g. %s" % (len(failed), failed[0]))
        if verifies_bad:
            self.problems.append("%d scheduled verification(s) failed, e.g. %s" % (len(verifies_bad), verifies_bad[0]))
        if summary["error_lines"]:
            self.problems.append("%d error line(s) in the daemon log" % summary["error_lines"])
        if not made:
            self.problems.append("no backup was made")
        if not rotations:
            self.problems.append("no rotation ran")
        if not verifies_ok:
            self.problems.append("no scheduled verification ran")
        if rotations and not summary["backups_removed"]:
            self.problems.append("the rotations removed nothing")
        return summary

    def cleanup(self, keep):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def verdict(memory, key):
    if not memory.get("judged"):
        return "run too short to judge (< 20 min)"
    return "flat" if memory[key] else "GROWING"


def render(report):
    m, lg, w = report["memory"], report["log"], report["writers"]
    rss, fds = m.get("rss_kib", {}), m.get("fds", {})
    held = m.get("held_between_jobs_kib", {})
    jobs = report.get("jobs", {}).get("by_kind", {})
    out = [
        "sqlbak soak: %d minute(s), %s .. %s (%.0f s)" % (report["minutes"], report["started"], report["ended"],
                                                          report["run_seconds"]),
        "writers: %d processes, %d bursts, %d commits (%d busy retries)" % (
            w["processes"], w["bursts"], w["commits"], w["busy"]),
        "backups: %d made, %d failed, %d scheduled runs skipped (one still running)" % (
            lg["backups_made"], lg["backups_failed"], lg["scheduled_skipped"]),
        "rotations: %d (%d backups removed); scheduled verifications: %d OK, %d failed" % (
            lg["rotations"], lg["backups_removed"], lg["verifications_ok"], lg["verifications_failed"]),
        "catalog jobs: %s" % ", ".join("%s %s" % (k, "/".join("%s=%d" % kv for kv in sorted(v.items())))
                                       for k, v in sorted(jobs.items())),
        "restores checked: %d (%d with problems)" % (
            len(report["restores"]), len([r for r in report["restores"] if r["problems"]])),
        "sources: %s" % ", ".join("%s counter %d (%d MiB)" % (n, s["counter"], s["bytes"] >> 20)
                                  for n, s in report["sources"].items()),
        "memory: max RSS %.1f MiB; RSS start/middle/end %.1f/%.1f/%.1f MiB, slope %+.2f MiB/h "
        "(second half %+.2f MiB/h; jobs' peaks grow with the databases)" % (
            m["max_rss_kib"] / 1024, rss.get("start", 0) / 1024, rss.get("middle", 0) / 1024,
            rss.get("end", 0) / 1024, rss.get("slope_per_hour", 0) / 1024,
            rss.get("second_half_slope_per_hour", 0) / 1024),
        "memory held between jobs (least anonymous RSS per %.0f s): start/middle/end "
        "%.1f/%.1f/%.1f MiB, max %.1f MiB; slope %+.2f MiB/h (second half %+.2f MiB/h): %s" % (
            BASELINE_WINDOW, held.get("start", 0) / 1024, held.get("middle", 0) / 1024,
            held.get("end", 0) / 1024, held.get("max", 0) / 1024, held.get("slope_per_hour", 0) / 1024,
            held.get("second_half_slope_per_hour", 0) / 1024, verdict(m, "rss_flat")),
        "fds: start/middle/end %s/%s/%s, min %s max %s; slope %+.2f/h (second half %+.2f/h): %s" % (
            fds.get("start"), fds.get("middle"), fds.get("end"), fds.get("min"), fds.get("max"),
            fds.get("slope_per_hour", 0), fds.get("second_half_slope_per_hour", 0),
            verdict(m, "fds_flat")),
        "control socket: %d status calls OK, %d failed; health at the end: %s; sqlbakd exit %s" % (
            report["control_status_calls"]["ok"], report["control_status_calls"]["failed"],
            report["health"].get("state"), report["daemon_exit_status"]),
        "daemon log: %d error line(s), %d warning line(s)" % (lg["error_lines"], lg["warning_lines"]),
    ]
    for d in lg["distinct_bad_lines"]:
        out.append("  %4dx %s" % (d["count"], d["line"][:300]))
    out.append("result: %s" % ("OK" if report["ok"] else "PROBLEMS"))
    for p in report["problems"]:
        out.append("  - " + p)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=int, default=60, help="length of the run (default 60)")
    ap.add_argument("--build", default=os.environ.get("SQLBAK_BUILD", os.path.join(SOURCE_ROOT, "build")),
                    help="build directory holding daemon/sqlbakd and ctl/sqlbakctl")
    ap.add_argument("--report", help="write the JSON report here (the daemon log beside it, .sqlbakd.log)")
    ap.add_argument("--workdir", help="work directory (default: a new one under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--writers-per-db", type=int, default=2)
    ap.add_argument("--burst", type=float, default=5.0, help="seconds a writer commits per burst (default 5)")
    ap.add_argument("--pause", type=float, default=25.0, help="seconds between bursts (default 25)")
    ap.add_argument("--rotate-every", type=int, help="minutes between rotations (default 4; 1 for short runs)")
    ap.add_argument("--verify-every", type=int, help="minutes between verifications (default 5; 1 for short runs)")
    ap.add_argument("--keep-last", type=int, help="retention keep_last (default 6; 2 for short runs)")
    ap.add_argument("--older-restores", type=int, default=3, help="older backups restored per database")
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 31))
    a = ap.parse_args()
    if a.minutes < 2:
        ap.error("--minutes must be at least 2")
    short = a.minutes < 20
    a.rotate_every = a.rotate_every or (1 if short else 4)
    a.verify_every = a.verify_every or (1 if short else 5)
    a.keep_last = a.keep_last or (2 if short else 6)
    log("seed %d" % a.seed)

    soak = Soak(a)
    failed = False
    try:
        report = soak.run()
    except Exception as e:  # noqa: BLE001 - reported, and the work directory kept
        log("aborted: %s" % e)
        soak.stop_daemon()
        sys.stderr.write(soak.read_log()[-4000:])
        soak.cleanup(keep=True)
        return 1
    report["seed"] = a.seed
    failed = not report["ok"]
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        shutil.copy(soak.daemon_log, a.report + ".sqlbakd.log")
    sys.stdout.write(render(report))
    keep = a.keep or failed
    if keep:
        log("work directory kept: %s" % soak.work)
    soak.cleanup(keep=keep)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
