#!/usr/bin/env python3
"""`sqlbakctl health`: every rule and its exit code (monitoring-plugins convention:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), the one-line summary first, each finding
naming its database and target; offline and through the daemon. Ages come from
libfaketime, so no test waits for time to pass.
"""

import datetime
import os
import shutil

import sqlbaktest as T

T0 = int(datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp())
HOUR = 3600


class Health(T.DaemonTestCase):
    env_kwargs = dict(extra_defaults={"max_age": "1h"})

    def health(self, when, *args, check=None):
        rc, out, err = self.env.ctl("health", *args, check=check, env=T.faketime_env(when))
        first = out.splitlines()[0] if out else ""
        return rc, first, out, err

    def health_json(self, when, expect_rc):
        return self.env.ctl_json("health", check=expect_rc, env=T.faketime_env(when))

    def make_shop(self):
        path = self.env.add_database("shop")
        T.create_db(path, script="CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        return path

    def test_no_backup_then_ages(self):
        self.make_shop()
        rc, first, out, _ = self.health(T0)
        self.assertEqual(rc, 2, out)
        self.assertTrue(first.startswith("SQLBAK CRITICAL - "), first)
        self.assertIn("'shop'", first)
        self.assertIn("'local'", first)
        self.assertIn("no backup at all", first)

        b = self.env.backup_one("shop", env=T.faketime_env(T0))
        rc, first, out, _ = self.health(T0 + 60)
        self.assertEqual(rc, 0, out)
        self.assertTrue(first.startswith("SQLBAK OK - "), first)

        rc, first, out, _ = self.health(T0 + int(1.5 * HOUR))
        self.assertEqual(rc, 1, out)
        self.assertTrue(first.startswith("SQLBAK WARNING - "), first)
        self.assertIn(b["id"], first)
        self.assertIn("max_age 1h", first)

        doc = self.health_json(T0 + int(2.5 * HOUR), 2)
        self.assertEqual(doc["state"], "CRITICAL")
        self.assertEqual(doc["exit_code"], 2)
        self.assertEqual(doc["findings"][0]["database"], "shop")
        self.assertEqual(doc["findings"][0]["target"], "local")
        self.assertEqual(doc["databases"][0]["targets"][0]["newest_backup"], b["id"])

    def test_failed_verification_is_critical(self):
        path = self.make_shop()
        con = T.connect(path)
        con.execute("INSERT INTO t SELECT randomblob(2000) FROM t, t, t, t, t")
        con.commit()
        con.close()
        b = self.env.backup_one("shop", env=T.faketime_env(T0))
        self.assertEqual(self.health(T0 + 60)[0], 0)
        # Damage one byte in the middle of every pack, then let verify find it.
        for dirpath, _dirs, files in os.walk(os.path.join(self.env.target, "packs")):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, "r+b") as fh:
                    fh.seek(os.path.getsize(p) // 2)
                    byte = fh.read(1)
                    fh.seek(-1, os.SEEK_CUR)
                    fh.write(bytes([byte[0] ^ 0xFF]))
        self.env.ctl("verify", b["id"], check=1, env=T.faketime_env(T0 + 120))
        rc, first, out, _ = self.health(T0 + 180)
        self.assertEqual(rc, 2, out)
        self.assertIn("failed verification", first)
        self.assertIn(b["id"], first)

    def test_missing_target_is_critical(self):
        self.make_shop()
        self.env.backup_one("shop", env=T.faketime_env(T0))
        shutil.rmtree(self.env.target)
        rc, first, out, _ = self.health(T0 + 60)
        self.assertEqual(rc, 2, out)
        self.assertIn("'local'", first)
        self.assertIn(self.env.target, first)

    def test_unknown_when_it_cannot_check(self):
        self.make_shop()
        rc, first, out, err = self.health(T0, "nosuchdb")
        self.assertEqual(rc, 3, out + err)
        self.assertTrue(first.startswith("SQLBAK UNKNOWN - "), first)
        self.assertIn("nosuchdb", first)
        with open(self.env.config, "a") as f:
            f.write("bogus_key: 1\n")
        rc, first, out, err = self.health(T0)
        self.assertEqual(rc, 3, out + err)
        self.assertTrue(first.startswith("SQLBAK UNKNOWN - "), first)

    def test_free_space(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small file system needs root")
        small = self.env.mount_tmpfs(self.env.path("small"), "600k")
        self.env.target = small
        self.env.write_config()
        path = self.env.add_database("shop")
        # 2 MiB of database that compresses to a few KiB.
        T.create_db(path, script="CREATE TABLE t(x); "
                                 "INSERT INTO t SELECT zeroblob(4000) FROM "
                                 "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
                                 "WHERE i < 500) SELECT i FROM c);")
        self.env.backup_one("shop", env=T.faketime_env(T0))
        rc, first, out, _ = self.health(T0 + 60)
        self.assertEqual(rc, 1, out)
        self.assertIn("less than the database's size", first)
        # Leave less than what the last backup stored.
        filler = os.path.join(small, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        rc, first, out, _ = self.health(T0 + 60)
        self.assertEqual(rc, 2, out)
        self.assertIn("less than the last backup stored", first)

    def test_through_the_daemon(self):
        self.make_shop()
        d = self.start_daemon()
        rc, out, err = d.ctl("health", check=None)
        self.assertEqual(rc, 2, out + err)
        self.assertTrue(out.startswith("SQLBAK CRITICAL - "), out)
        self.env.backup_one("shop")
        rc, out, err = d.ctl("health", check=None)
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(out.startswith("SQLBAK OK - "), out)
        d.stop()
        # The daemon gone: UNKNOWN, not a crash or a usage error.
        rc, out, err = d.ctl("health", check=None)
        self.assertEqual(rc, 3, out + err)
        self.assertTrue(out.startswith("SQLBAK UNKNOWN - "), out)


if __name__ == "__main__":
    T.main()
