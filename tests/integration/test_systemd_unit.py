#!/usr/bin/env python3
"""The shipped systemd unit: `systemd-analyze verify` accepts it, and
`systemd-analyze security --offline=true` rates its exposure 2.5 or lower."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "systemd", "sqlbakd.service")
SQLBAKD = os.environ.get("SQLBAKD", "")


@unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sqlbak-unit-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(UNIT) as f:
            text = f.read()
        # verify checks that the executables exist: point them at the build.
        self.assertTrue(os.path.exists(SQLBAKD), "set SQLBAKD to the built sqlbakd")
        text = text.replace("/usr/sbin/sqlbakd", SQLBAKD)
        self.unit = os.path.join(self.dir, "sqlbakd.service")
        with open(self.unit, "w") as f:
            f.write(text)

    def test_verify_passes(self):
        r = subprocess.run(["systemd-analyze", "verify", self.unit], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("sqlbakd.service:", r.stderr, r.stderr)

    def test_security_exposure_is_ok(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", self.unit],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for sqlbakd.service: ([0-9.]+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.5, r.stdout)

    def test_unit_has_what_the_daemon_needs(self):
        with open(UNIT) as f:
            text = f.read()
        for line in ("Type=notify", "WatchdogSec=", "ExecReload=", "Restart=on-failure", "User=sqlbak",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/sqlbak /var/backups/sqlbak",
                     "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies=", "SystemCallFilter=@system-service"):
            self.assertIn(line, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
