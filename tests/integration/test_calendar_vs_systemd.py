#!/usr/bin/env python3
"""`sqlbakctl calendar` against its oracle, `systemd-analyze calendar`.

For every expression, base time and zone (Europe/Paris, America/New_York, UTC) both
programs are run with the same --iterations and --base-time and TZ, and their outputs
must be identical line for line, except the "From now:" lines (relative to the real
clock, taken at slightly different moments). Expressions systemd rejects must be
rejected too (exit status 1, a message on stderr naming the expression).

The base times sit just before and on the daylight-saving changes of 2026 in both
zones, in the repeated hour of the fall-back changes, and at month and year ends.

Needs systemd-analyze (systemd 252 is the reference); skipped without it (exit 77).
Standard library only. The binary is $SQLBAKCTL.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))


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
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

ZONES = ("Europe/Paris", "America/New_York", "UTC")

ITERATIONS = 8

# The sanitizer build runs one case in SQLBAK_TEST_ORACLE_SHARE (a different
# one in each zone, so that every expression and base time still runs): each
# case is a run of sqlbakctl, ten times slower under ASan.
SHARE = max(1, int(os.environ.get("SQLBAK_TEST_ORACLE_SHARE", "1")))

# Valid expressions, by feature.
EXPRESSIONS = [
    # shorthands
    "minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually",
    "quarterly", "semiannually", "semi-annually", "biannually", "DAILY",
    # weekdays: short and long names, lists, ranges, mixed
    "Mon..Fri 22:30", "Sat,Sun 10:00", "Mon,Wed..Fri 08:15", "Monday 09:00",
    "sunday *-*-* 02:30:00", "Mon-Wed 12:00", "Tue,Thu 02:30", "Fri", "Sun 02:30",
    "Mon..Sun 01:00", "Sat..Sun 03:15",
    # dates: '*', lists, ranges, repetitions, two-digit years, date alone
    "*-*-1/2 03:00", "*-*-1,15 04:00", "*-*-1..5 05:00", "*-02-29 06:00",
    "*-*-31 12:00", "2026-03-29 02:30", "2026-10-25 02:30", "2026-11-01 01:30",
    "2026-03-08 02:30", "2027-01-01", "26-12-31 23:59:59", "2026-*-* 02:30",
    "*-1/5-1 00:00", "2026..2028-02-29", "*-01,07-01", "2026,2030-12-31",
    # the last days of a month
    "*-02~1 07:00", "*-*~1", "*-*~1..3 18:00", "*-*~5/1", "*-*~7/2", "Sun *-10~07 02:30",
    "Sun *-03-25..31 02:00",
    # times alone; the hours that do not exist or repeat on DST days
    "02:00", "02:30", "03:00", "01:30", "02:00:30", "00:00", "23:59:59",
    # repetitions and lists in times
    "*:0/15", "*:*:0/10", "*-*-* *:00/20:00", "0/6:00", "8..18/2:30",
    "*:05,35", "1,2,3:00", "*:*:1.5", "*:*:0/7.5", "*:*:1.1234567", "12:00:00.000001",
    "*:0/25", "*:50/5", "9..17:0/30",
    # seconds since the epoch
    "@1800000000",
    # zones: UTC, names, the local zone's abbreviations
    "daily UTC", "Mon 10:00 UTC", "*-*-* 02:30 Europe/Paris", "10:00 America/New_York",
    "*:30 Asia/Kolkata", "hourly Australia/Lord_Howe", "02:30 Europe/London",
    "10:00 CET", "10:00 CEST", "10:00 EST", "10:00 EDT", "01,02:00:59 EDT", "*:0/20 CEST",
    # never elapses
    "*-02-30", "2020-01-01",
]

# Expressions systemd rejects.
INVALID = [
    "", " ", "Mon..Fry 10:00", "Fry 10:00", "Mond 10:00", "25:00", "2026-13-01",
    "*:60", "10:00:60", "daily 02:30", "foo", "*/2:00", "1..0:00", "*-*-0",
    "1969-01-01", "2200-01-01", "Fri..Mon", "Mon.. 10:00", "10:00 ", " daily",
    "*-02~29", "*-*~3..1 18:00", "*-*~1-1", "1:2:3:4", "*:*:1.", "*:0/0", "*:50/15", "Mon,,Tue",
    "10:00 Europe/Nowhere", "UTC",
]

BASE_TIMES = [
    "2026-03-28 12:00",      # the day before Paris springs forward
    "2026-03-29 01:00",      # an hour before it
    "2026-03-29 01:59:59",
    "2026-03-29 02:30",      # inside the gap (read as 03:30 CEST)
    "2026-10-25 01:00",      # an hour before Paris falls back
    "2026-10-25 02:30",      # inside the repeated hour
    "2026-03-07 12:00",      # the day before New York springs forward
    "2026-03-08 01:00",
    "2026-11-01 00:30",      # New York falls back at 02:00
    "2026-11-01 01:30",      # inside the repeated hour
    "2026-12-31 23:00",      # year end
    "2026-12-31 23:59:59",
    "2027-02-28 12:00",      # month ends, non-leap and leap
    "2028-02-28 23:30",
    "2026-01-31 00:00",
    "2026-06-15 08:45:30.5",
    "2026-11-25 16:50:12",
    "@1777777777",
]


def _run(argv, tz):
    env = dict(os.environ)
    env["TZ"] = tz
    env["LC_ALL"] = "C"
    env["SYSTEMD_COLORS"] = "0"
    env["SYSTEMD_PAGER"] = ""
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _comparable(stdout):
    return [line for line in stdout.splitlines() if not line.lstrip().startswith("From now:")]


def _systemd_tables(expressions, base, tz):
    """systemd-analyze's output for each of EXPRESSIONS (one run for all of them):
    its lines, or None where it failed. It prints the tables separated by one empty
    line, and nothing for an expression it rejects."""
    args = ["--no-pager", "calendar", "--iterations", str(ITERATIONS), "--base-time", base]
    _, out, _ = _run([SYSTEMD_ANALYZE] + args + ["--"] + list(expressions), tz)
    tables = [[]]
    for line in out.splitlines():
        if line == "":
            tables.append([])
        else:
            tables[-1].append(line)
    if len(tables) != len(expressions):
        raise AssertionError("cannot split systemd-analyze's output into %d tables:\n%s"
                             % (len(expressions), out))
    return [_comparable("\n".join(t)) or None for t in tables]


def _compare(expr, base, tz, want):
    """None if sqlbakctl agrees with WANT (systemd's lines, None for an error), else
    a description of the difference."""
    args = ["calendar", "--iterations", str(ITERATIONS), "--base-time", base, expr]
    crc, cout, cerr = _run([SQLBAKCTL] + args, tz)
    where = "TZ=%s base=%r expr=%r" % (tz, base, expr)
    if want is None:
        if crc == 0:
            return "%s: systemd fails but sqlbakctl prints:\n%s" % (where, cout)
        if crc != 1 or cout != "" or not cerr.strip():
            return "%s: exit status %d, stdout %r, stderr %r" % (where, crc, cout, cerr)
        return None
    if crc != 0:
        return "%s: systemd accepts it but sqlbakctl fails (%d): %s" % (where, crc, cerr.strip())
    got = _comparable(cout)
    if want != got:
        return "%s:\n--- systemd-analyze\n%s\n--- sqlbakctl\n%s" % (where, "\n".join(want), "\n".join(got))
    return None


@unittest.skipIf(SYSTEMD_ANALYZE is None, "systemd-analyze is not installed: no reference to compare with")
class CalendarVsSystemd(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SQLBAKCTL):
            raise unittest.SkipTest("sqlbakctl not found at %s (set SQLBAKCTL)" % SQLBAKCTL)

    def _compare_all(self, tz, expressions, bases):
        cases = []
        for base in bases:
            wanted = _systemd_tables(expressions, base, tz)
            cases += [(e, base, tz, w) for e, w in zip(expressions, wanted)]
        offset = ZONES.index(tz) % SHARE
        cases = [c for i, c in enumerate(cases) if i % SHARE == offset]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
            results = list(pool.map(lambda c: _compare(*c), cases))
        failures = [r for r in results if r is not None]
        print("\n%s: %d of %d cases (%d expressions x %d base times, 1 in %d) agree with systemd-analyze"
              % (tz, len(cases) - len(failures), len(cases), len(expressions), len(bases), SHARE))
        if failures:
            self.fail("%d of %d cases differ; the first ones:\n\n%s"
                      % (len(failures), len(cases), "\n\n".join(failures[:8])))

    def test_europe_paris(self):
        self._compare_all("Europe/Paris", EXPRESSIONS, BASE_TIMES)

    def test_america_new_york(self):
        self._compare_all("America/New_York", EXPRESSIONS, BASE_TIMES)

    def test_utc(self):
        self._compare_all("UTC", EXPRESSIONS, BASE_TIMES)

    def test_rejected_expressions(self):
        for tz in ZONES:
            for expr in INVALID:
                with self.subTest(tz=tz, expr=expr):
                    args = ["calendar", "--base-time", "2026-03-28 12:00", expr]
                    src, _, _ = _run([SYSTEMD_ANALYZE, "--no-pager"] + args, tz)
                    crc, cout, cerr = _run([SQLBAKCTL] + args, tz)
                    if src == 0:
                        self.assertEqual(crc, 0, "systemd accepts %r, sqlbakctl says %s" % (expr, cerr))
                        continue
                    self.assertEqual(crc, 1, "%r: exit status %d, stderr %r" % (expr, crc, cerr))
                    self.assertEqual(cout, "")
                    self.assertIn("calendar expression '%s'" % expr, cerr)
                    self.assertEqual(len(cerr.strip().splitlines()), 1, cerr)

    def test_rejected_expressions_are_really_rejected(self):
        # Guards the list above: each of them must be invalid for systemd in UTC.
        for expr in INVALID:
            with self.subTest(expr=expr):
                rc, _, _ = _run([SYSTEMD_ANALYZE, "--no-pager", "calendar", expr], "UTC")
                self.assertNotEqual(rc, 0, "systemd-analyze accepts %r" % expr)

    def test_default_iterations_and_now(self):
        # Without --base-time both start from now; with one iteration.
        for tz in ZONES:
            for expr in ("daily", "Mon..Fri 22:30", "*:0/15"):
                with self.subTest(tz=tz, expr=expr):
                    _, sout, _ = _run([SYSTEMD_ANALYZE, "--no-pager", "calendar", expr], tz)
                    rc, cout, err = _run([SQLBAKCTL, "calendar", expr], tz)
                    self.assertEqual(rc, 0, err)
                    # A minute boundary may pass between the two runs; retry once.
                    if _comparable(sout) != _comparable(cout):
                        _, sout, _ = _run([SYSTEMD_ANALYZE, "--no-pager", "calendar", expr], tz)
                    self.assertEqual(_comparable(sout), _comparable(cout))
                    self.assertTrue(any(l.strip().startswith("From now:") for l in cout.splitlines()))


if __name__ == "__main__":
    if SYSTEMD_ANALYZE is None:
        print("SKIPPED: systemd-analyze is not installed, nothing to compare sqlbakctl calendar with")
        sys.exit(77)  # CTest's SKIP_RETURN_CODE
    unittest.main(verbosity=2)
