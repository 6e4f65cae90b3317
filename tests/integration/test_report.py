#!/usr/bin/env python3
"""`sqlbakctl report`: a generated history, every figure checked against an
independent computation here.

The catalog is created by a real `sqlbakctl --offline backup` (so its schema is
the one sqlbak writes), then filled with five weeks of generated jobs through
Python's sqlite3 module: backups of three databases with different sizes, change
rates and compression, failures with repeated error texts, cancelled backups,
verifications (some failing), rotations and repository-wide prunes, and a gap of
days without any job. `report --json` must give the figures computed below from
the catalog rows with the definitions of lib/report.h; the text output must
show the chart, the errors, the requests and bytes of each target and the
recommendations; `--days 0` is a usage error.

LocalTargetCountsTest checks what real jobs on a local target record: a backup's
PUTs and bytes up are the objects (and their bytes) that appeared in the target
directory, a rotate+prune's DELETEs the objects that went away, a restore's GETs
and bytes down are non-zero and no more than the target holds.
"""

import datetime
import os
import sqlite3
import sys
import time
import unittest

import sqlbaktest as T

DAY_MS = 86400000
HOUR_MS = 3600000
KINDS = ("backup", "verify", "restore", "rotate", "prune")
COLUMNS = ("kind", "database", "target", "backup_id", "started_at_ms", "duration_ms", "database_bytes",
           "stored_bytes", "changed_pages", "result", "error", "page_count", "page_size", "bytes_uploaded",
           "bytes_downloaded", "put_requests", "get_requests", "list_requests", "delete_requests")

# Per database: pages, changed fraction range, compression range, failure probability.
PROFILES = {
    "app": dict(pages=2000, frac=(0.01, 0.05), comp=(2.5, 4.0), fail=0.05),
    "logs": dict(pages=500, frac=(0.02, 0.10), comp=(3.0, 6.0), fail=0.35),
    "media": dict(pages=800, frac=(0.92, 1.0), comp=(1.0, 1.2), fail=0.0),
}
ERRORS = ["disk full", "disk full", "disk full", "target unreachable: connection refused",
          "target unreachable: connection refused", "database is locked"]


def local_date(ms):
    return time.strftime("%Y-%m-%d", time.localtime(ms // 1000))


def mean(values):
    return sum(values) / len(values) if values else None


def iso(ms):
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(rng, now_ms, days_back=35, gap=(8, 9, 10)):
    """Job rows (dicts of COLUMNS), none within 2 h of the 30-day boundary or in the last 30 min."""
    boundary = now_ms - 30 * DAY_MS
    rows = []

    def ok_time(t):
        return abs(t - boundary) > 2 * HOUR_MS and t < now_ms - 30 * 60000

    def row(**kw):
        r = {c: 0 for c in COLUMNS}
        r.update(kind="backup", database="", target="local", backup_id="", result="success", error="",
                 page_size=4096)
        r.update(kw)
        rows.append(r)

    for k in range(days_back):
        if k in gap:
            continue
        for db, p in PROFILES.items():
            for _ in range(rng.randint(1, 2)):
                t = now_ms - k * DAY_MS - rng.randint(HOUR_MS, 23 * HOUR_MS)
                if not ok_time(t):
                    continue
                pages = p["pages"] + (days_back - k) * 3
                roll = rng.random()
                if roll < p["fail"]:
                    row(database=db, started_at_ms=t, duration_ms=rng.randint(10, 3000), result="failure",
                        error=rng.choice(ERRORS), bytes_uploaded=rng.randint(0, 1000),
                        put_requests=rng.randint(0, 1), list_requests=1)
                elif roll > 0.97:
                    row(database=db, started_at_ms=t, duration_ms=rng.randint(10, 3000), result="cancelled",
                        error="cancelled: sqlbakd is shutting down", list_requests=1)
                else:
                    changed = max(1, int(pages * rng.uniform(*p["frac"])))
                    stored = int(changed * 4096 / rng.uniform(*p["comp"]))
                    # "media" goes to an S3 target too: per-target figures differ.
                    for target in ("local", "offsite") if db == "media" else ("local",):
                        row(database=db, target=target, started_at_ms=t, duration_ms=rng.randint(500, 20000),
                            database_bytes=pages * 4096, page_count=pages, changed_pages=changed,
                            stored_bytes=stored, bytes_uploaded=stored + rng.randint(300, 900),
                            bytes_downloaded=rng.randint(100, 5000),
                            put_requests=rng.randint(10, 40) + stored // (1 << 20), get_requests=rng.randint(0, 70),
                            list_requests=rng.randint(1, 6), delete_requests=2, backup_id="gen-%d" % len(rows))
            if k % 3 == 0:
                t = now_ms - k * DAY_MS - 90 * 60000
                if ok_time(t):
                    bad = db == "logs" and k % 6 == 0
                    row(kind="verify", database=db, started_at_ms=t, duration_ms=rng.randint(100, 5000),
                        result="failure" if bad else "success",
                        error="checksum mismatch in pack %02x" % k if bad else "",
                        bytes_downloaded=rng.randint(1000, 100000), get_requests=rng.randint(1, 9),
                        list_requests=1)
        if k % 7 == 1:
            t = now_ms - k * DAY_MS - 5 * HOUR_MS
            if ok_time(t):
                for db in PROFILES:
                    row(kind="rotate", database=db, started_at_ms=t + 1000, duration_ms=50, list_requests=2)
                for target in ("local", "offsite"):
                    row(kind="prune", database="", target=target, started_at_ms=t + 5000, duration_ms=800,
                        list_requests=3, get_requests=2, delete_requests=rng.randint(1, 12),
                        bytes_downloaded=rng.randint(100, 2000))
    return rows


def figures(jobs, days):
    """The figures of lib/report.h over JOBS (rows as dicts)."""
    backups = [j for j in jobs if j["kind"] == "backup"]
    ok = [j for j in backups if j["result"] == "success"]
    ratios = [j["changed_pages"] * j["page_size"] / j["stored_bytes"] for j in ok
              if j["stored_bytes"] > 0 and j["page_size"] > 0 and j["changed_pages"] > 0]
    fractions = [j["changed_pages"] / j["page_count"] for j in ok if j["page_count"] > 0]
    stored = sum(j["stored_bytes"] for j in ok)
    f = {
        "jobs": len(jobs),
        "kinds": {k: sum(1 for j in jobs if j["kind"] == k) for k in KINDS},
        "backups": len(backups),
        "successes": len(ok),
        "failures": sum(1 for j in backups if j["result"] == "failure"),
        "cancelled": sum(1 for j in backups if j["result"] == "cancelled"),
        "success_rate": len(ok) / len(backups) if backups else None,
        "failure_rate": sum(1 for j in backups if j["result"] == "failure") / len(backups) if backups else None,
        "mean_duration_ms": mean([j["duration_ms"] for j in ok]),
        "max_duration_ms": max([j["duration_ms"] for j in ok]) if ok else None,
        "mean_database_bytes": mean([j["database_bytes"] for j in ok]),
        "mean_ratio": mean(ratios),
        "stored_bytes": stored,
        "stored_bytes_per_day": stored / days,
        "uploaded_bytes": sum(j["bytes_uploaded"] for j in jobs),
        "downloaded_bytes": sum(j["bytes_downloaded"] for j in jobs),
        "requests": requests(jobs),
    }
    return f, fractions


def requests(jobs):
    return {k: sum(j[k + "_requests"] for j in jobs) for k in ("put", "get", "list", "delete")}


def target_figures(jobs):
    """The "targets" entries of lib/report.h over JOBS."""
    out = []
    for name in sorted({j["target"] for j in jobs if j["target"]}):
        mine = [j for j in jobs if j["target"] == name]
        out.append({"name": name, "jobs": len(mine), "requests": requests(mine),
                    "uploaded_bytes": sum(j["bytes_uploaded"] for j in mine),
                    "downloaded_bytes": sum(j["bytes_downloaded"] for j in mine)})
    return out


def grouped(n):
    return "{:,}".format(n)


def expected_recommendations(name, f, fractions, jobs, days):
    verify = [j for j in jobs if j["kind"] == "verify"]
    verify_failed = sum(1 for j in verify if j["result"] == "failure")
    out = set()
    if f["backups"] > 0 and f["successes"] == 0:
        out.add("no_successful_backup")
    elif f["backups"] > 0 and f["failure_rate"] > 0.10:
        out.add("high_failure_rate")
    if verify_failed > 0:
        out.add("verification_failed")
    if f["mean_duration_ms"] is not None and f["mean_duration_ms"] > 3600000:
        out.add("long_duration")
    if f["mean_ratio"] is not None and f["mean_ratio"] < 1.5:
        out.add("low_compression")
    if len(fractions) >= 4 and mean(fractions) >= 0.9:
        out.add("full_every_time")
    if (len(fractions) >= 3 and mean(fractions) < 0.01 and f["successes"] / days <= 1.5
            and f["mean_duration_ms"] < 60000):
        out.add("cheap_increments")
    return {(name, k) for k in out}


class ReportTest(T.EnvTestCase):
    def setUp(self):
        super().setUp()
        for name in PROFILES:
            T.create_db(self.env.db_path(name), rows=200)
            self.env.add_database(name)
        # A real backup creates the catalog with sqlbak's own schema (and one real job).
        self.env.backup_one("app")
        self.catalog = os.path.join(self.env.state, "catalog.db")
        self.assertTrue(os.path.exists(self.catalog), "no catalog at %s after a backup" % self.catalog)
        con = sqlite3.connect(self.catalog, timeout=10)
        try:
            self.assertGreaterEqual(con.execute("PRAGMA user_version").fetchone()[0], 2)
            cols = {r[1] for r in con.execute("PRAGMA table_info(jobs)")}
            self.assertTrue(set(COLUMNS) <= cols, "catalog columns %r" % sorted(cols))
            self.now_ms = int(time.time() * 1000)
            self.generated = generate(self.rng, self.now_ms)
            con.executemany("INSERT INTO jobs (%s) VALUES (%s)" % (
                ", ".join('"%s"' % c for c in COLUMNS), ", ".join("?" * len(COLUMNS))),
                [tuple(r[c] for c in COLUMNS) for r in self.generated])
            con.commit()
        finally:
            con.close()

    def catalog_rows(self):
        con = sqlite3.connect(self.catalog, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM jobs ORDER BY started_at_ms, id")]
        finally:
            con.close()

    def assertFigure(self, got, want, what):
        if want is None:
            self.assertIsNone(got, what)
        elif isinstance(want, float):
            self.assertIsNotNone(got, what)
            self.assertAlmostEqual(got, want, delta=max(1e-9, abs(want) * 1e-9), msg=what)
        else:
            self.assertEqual(got, want, what)

    def assertFigures(self, got, want, what):
        for key, value in want.items():
            self.assertIn(key, got, "%s: no %r" % (what, key))
            self.assertFigure(got[key], value, "%s: %s" % (what, key))

    def window(self, report, days, database=""):
        generated = T.parse_time(report["generated"])
        end_ms = int(generated.timestamp() * 1000)
        # `generated` has second precision; the jobs keep hours away from both ends.
        self.assertLessEqual(abs(end_ms - self.now_ms), 10 * 60000, "report time %s" % report["generated"])
        since = end_ms - days * DAY_MS
        jobs = [j for j in self.catalog_rows() if since <= j["started_at_ms"] <= end_ms + 1000]
        if database:
            jobs = [j for j in jobs if j["database"] == database]
        return since, end_ms, jobs

    def check_report(self, report, days, database=""):
        since, end_ms, jobs = self.window(report, days, database)
        self.assertEqual(report["days"], days)
        self.assertEqual(report["database"], database)

        # Totals.
        totals, _ = figures(jobs, days)
        self.assertFigures(report["totals"], totals, "totals")
        verify = [j for j in jobs if j["kind"] == "verify"]
        self.assertEqual(report["verifications"],
                         {"runs": len(verify), "failures": sum(1 for j in verify if j["result"] == "failure")})

        # What each target was asked.
        self.assertEqual(report["targets"], target_figures(jobs))

        # Databases, and the recommendations their figures call for.
        names = sorted({j["database"] for j in jobs if j["database"]})
        self.assertEqual([d["name"] for d in report["databases"]], names)
        want_recs = set()
        for d in report["databases"]:
            mine = [j for j in jobs if j["database"] == d["name"]]
            f, fractions = figures(mine, days)
            self.assertFigures(d, f, "database %s" % d["name"])
            self.assertFigure(d["mean_changed_fraction"], mean(fractions), "%s: mean_changed_fraction" % d["name"])
            self.assertFigure(d["backups_per_day"], f["successes"] / days, "%s: backups_per_day" % d["name"])
            ok = [j["started_at_ms"] for j in mine if j["kind"] == "backup" and j["result"] == "success"]
            self.assertEqual(d["last_success"], iso(max(ok)) if ok else None, d["name"])
            v = [j for j in mine if j["kind"] == "verify"]
            self.assertEqual(d["verifications"],
                             {"runs": len(v), "failures": sum(1 for j in v if j["result"] == "failure")})
            want_recs |= expected_recommendations(d["name"], f, fractions, mine, days)
        got_recs = {(r["database"], r["kind"]) for r in report["recommendations"]}
        self.assertEqual(got_recs, want_recs)
        order = {"critical": 0, "warning": 1, "info": 2}
        ranks = [(order[r["severity"]], r["database"]) for r in report["recommendations"]]
        self.assertEqual(ranks, sorted(ranks), "recommendations not most severe first")
        for r in report["recommendations"]:
            self.assertIn(r["database"], r["message"])

        # Per day: every local date from the window's start to its end, zero-filled.
        start = datetime.date.fromisoformat(local_date(since))
        stop = datetime.date.fromisoformat(local_date(end_ms))
        dates = [(start + datetime.timedelta(days=i)).isoformat() for i in range((stop - start).days + 1)]
        self.assertEqual([d["date"] for d in report["per_day"]], dates)
        self.assertEqual((report["from"], report["to"]), (dates[0], dates[-1]))
        for d in report["per_day"]:
            day = [j for j in jobs if j["kind"] == "backup" and local_date(j["started_at_ms"]) == d["date"]]
            ok = [j for j in day if j["result"] == "success"]
            last = {}
            for j in ok:  # rows are in time order
                last[j["database"]] = j["database_bytes"]
            self.assertFigures(d, {
                "backups": len(day),
                "failures": sum(1 for j in day if j["result"] == "failure"),
                "mean_duration_ms": mean([j["duration_ms"] for j in ok]),
                "stored_bytes": sum(j["stored_bytes"] for j in ok),
                "database_bytes": sum(last.values()),
            }, "per_day %s" % d["date"])

        # The most frequent errors of failed jobs.
        errors = {}
        for j in jobs:
            if j["result"] == "failure" and j["error"]:
                e = errors.setdefault(j["error"], {"count": 0, "last": 0, "databases": set()})
                e["count"] += 1
                e["last"] = max(e["last"], j["started_at_ms"])
                if j["database"]:
                    e["databases"].add(j["database"])
        ranked = sorted(errors.items(), key=lambda kv: (-kv[1]["count"], -kv[1]["last"], kv[0]))[:5]
        self.assertEqual(report["errors"], [
            {"error": text, "count": e["count"], "last": iso(e["last"]), "databases": sorted(e["databases"])}
            for text, e in ranked])
        return jobs

    def test_json_figures(self):
        report = self.env.ctl_json("report", "--days", "30")
        jobs = self.check_report(report, 30)
        # The generated history is in it, and so is the gap of days without jobs.
        self.assertGreater(len(jobs), 100)
        self.assertTrue(any(d["backups"] == 0 for d in report["per_day"]), "no empty day in the chart data")
        kinds = {(r["database"], r["kind"]) for r in report["recommendations"]}
        self.assertIn(("media", "low_compression"), kinds)
        self.assertIn(("logs", "verification_failed"), kinds)

    def test_json_one_database_and_short_window(self):
        self.check_report(self.env.ctl_json("report", "--days", "30", "logs"), 30, "logs")
        self.check_report(self.env.ctl_json("report", "--days", "3"), 3)

    def test_text_output(self):
        report = self.env.ctl_json("report", "--days", "30")
        rc, out, err = self.env.ctl("report", "--days", "30", check=0)
        info = T.describe(["sqlbakctl", "report", "--days", "30"], rc, out, err)
        lines = out.splitlines()
        # The chart: one line per day, starting with its date; a bar where bytes were stored.
        for d in report["per_day"]:
            line = [l for l in lines if l.startswith(d["date"] + " ")]
            self.assertEqual(len(line), 1, "no chart line for %s\n%s" % (d["date"], info))
            if d["stored_bytes"] > 0:
                self.assertTrue("#" in line[0] or "\u2588" in line[0] or any(
                    c in line[0] for c in "\u2589\u258a\u258b\u258c\u258d\u258e\u258f"),
                    "no bar on %r\n%s" % (line[0], info))
        self.assertIn("Recommendations", out, info)
        for r in report["recommendations"]:
            self.assertIn(r["message"], out, info)
        self.assertIn(report["errors"][0]["error"], out, info)
        for d in report["databases"]:
            self.assertTrue(any(l.startswith(d["name"] + " ") for l in lines), "no row for %s\n%s" % (d["name"], info))
        # One line per target: "target NAME: 1,234 PUT, 56 GET, 12 LIST, 3 DELETE, 1.2 GiB up, 40 MiB down".
        self.assertEqual([t["name"] for t in report["targets"]], ["local", "offsite"])
        for t in report["targets"]:
            r = t["requests"]
            want = "target %s: %s PUT, %s GET, %s LIST, %s DELETE, " % (
                t["name"], grouped(r["put"]), grouped(r["get"]), grouped(r["list"]), grouped(r["delete"]))
            line = [l for l in lines if l.strip().startswith(want)]
            self.assertEqual(len(line), 1, "no line %r\n%s" % (want, info))
            self.assertRegex(line[0], r" up, [0-9.]+ [KMGT]?i?B down", info)
        self.assertGreater(report["targets"][0]["requests"]["put"], 1000, "no thousands separator exercised")

    def test_days_out_of_range(self):
        for days in ("0", "3661"):
            args = ["report", "--days", days]
            rc, out, err = self.env.ctl(*args)
            self.assertClearError(rc, out, err, expected_rc=2, words=("days",),
                                  args=[T.SQLBAKCTL] + self.env.ctl_args(*args))
            self.assertIn("3660", err)


class LocalTargetCountsTest(T.EnvTestCase):
    """Real jobs on a local target record its file operations as requests."""
    env_kwargs = dict(extra_defaults={
        "retention": "{keep_last: 1, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, "
                     "keep_yearly: 0, keep_within: 0s}",
    })

    def repo_objects(self):
        """{key: size} of the objects in the target directory (not locks/ or tmp/)."""
        out = {}
        for dirpath, _, files in os.walk(self.env.target):
            for n in files:
                p = os.path.join(dirpath, n)
                key = os.path.relpath(p, self.env.target)
                if key.split(os.sep)[0] not in ("locks", "tmp"):
                    out[key] = os.path.getsize(p)
        return out

    def last_job(self, kind):
        con = sqlite3.connect(os.path.join(self.env.state, "catalog.db"), timeout=10)
        con.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in con.execute("SELECT * FROM jobs WHERE kind = ? ORDER BY id", (kind,))]
        finally:
            con.close()
        self.assertTrue(rows, "no %s job in the catalog" % kind)
        return rows[-1]

    def test_backup_restore_rotate_prune(self):
        path = T.create_db(self.env.db_path("app"), rows=3000)
        self.env.add_database("app")

        before = self.repo_objects()
        first = self.env.backup_one("app")
        after = self.repo_objects()
        new = {k: v for k, v in after.items() if k not in before}
        job = self.last_job("backup")
        self.assertEqual(job["target"], "local")
        self.assertEqual(job["put_requests"], len(new), "objects written: %s" % sorted(new))
        self.assertEqual(job["bytes_uploaded"], sum(new.values()))
        self.assertEqual(job["delete_requests"], 0)
        self.assertGreater(job["list_requests"], 0)
        self.assertGreater(job["get_requests"], 0)  # the config object, at least

        # A second backup after a change, so that rotation has one to remove.
        con = T.connect(path)
        con.execute("DELETE FROM t WHERE id % 2 = 0")
        T.fill(con, 1000, 100)
        con.execute("VACUUM")
        con.close()
        before = self.repo_objects()
        self.env.backup_one("app")
        new = {k: v for k, v in self.repo_objects().items() if k not in before}
        job = self.last_job("backup")
        self.assertEqual(job["put_requests"], len(new))
        self.assertEqual(job["bytes_uploaded"], sum(new.values()))

        before = self.repo_objects()
        out = self.env.restore(first["id"])
        self.assertTrue(os.path.exists(out))
        job = self.last_job("restore")
        self.assertEqual((job["put_requests"], job["delete_requests"], job["bytes_uploaded"]), (0, 0, 0))
        self.assertGreater(job["get_requests"], 0)
        self.assertGreater(job["bytes_downloaded"], 0)
        self.assertLessEqual(job["bytes_downloaded"], 2 * sum(before.values()))

        before = self.repo_objects()
        doc = self.env.ctl_json("rotate")
        self.assertEqual(doc["errors"], [])
        self.assertEqual(len(doc["rotations"][0]["removed"]), 1, doc)
        gone = [k for k in before if k not in self.repo_objects()]
        rotate, prune = self.last_job("rotate"), self.last_job("prune")
        self.assertEqual(rotate["delete_requests"], 1)
        self.assertEqual(rotate["delete_requests"] + prune["delete_requests"], len(gone), sorted(gone))
        self.assertEqual(rotate["put_requests"] + prune["put_requests"], 0)
        self.assertGreater(prune["list_requests"], 0)

        # The report adds them up per target.
        report = self.env.ctl_json("report", "--days", "1")
        [local] = report["targets"]
        self.assertEqual(local["name"], "local")
        self.assertEqual(local["jobs"], 5)
        self.assertEqual(local["requests"], report["totals"]["requests"])
        self.assertGreater(local["requests"]["put"], 0)
        self.assertGreater(local["downloaded_bytes"], 0)


if __name__ == "__main__":
    if not os.path.exists(T.SQLBAKCTL) or not T.shutil.which(T.SQLITE3):
        sys.stderr.write("skipped: sqlbakctl (%s) or the sqlite3 shell is missing\n" % T.SQLBAKCTL)
        sys.exit(77)
    T.main()
