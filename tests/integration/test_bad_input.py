#!/usr/bin/env python3
"""Bad input: every failure is exit 1 (2 for usage), one clear line on stderr naming
the thing concerned, and leaves existing backups intact."""

import os
import re
import shutil
import subprocess
import time
import unittest

import sqlbaktest as T

IS_ROOT = os.geteuid() == 0


class BadInput(T.EnvTestCase):

    def setUp(self):
        super().setUp()
        # A good database with one backup, present in every scenario.
        self.good = self.env.add_database("good")
        T.create_db(self.good, rows=200, row_bytes=200)
        self.good_backup = self.env.backup_one("good")["id"]

    def assert_intact(self):
        self.env.verify_all(check=0)
        self.assertIn(self.good_backup, self.env.list_ids())

    def backup_fails(self, name, words=(), names=()):
        args = self.env.ctl_args("backup", name)
        rc, out, err = self.env.ctl("backup", name)
        self.assertClearError(rc, out, err, 1, names=(name,) + tuple(names), words=words,
                              args=[T.SQLBAKCTL] + args)
        return err

    # --- databases ------------------------------------------------------------------

    def test_missing_database_file(self):
        path = self.env.add_database("ghost", self.env.path("db", "no-such.db"))
        self.backup_fails("ghost", names=(path,))
        self.assertFalse(os.path.exists(path), "backing up a missing database created it")
        self.assertNotIn("ghost", [b["database"] for b in self.env.list()])
        # All databases at once: the good one is backed up, the missing one reported.
        doc = self.env.ctl_json("backup", check=1)
        self.assertEqual([b["database"] for b in doc["backups"]], ["good"])
        # The source is missing: the error concerns the database, whatever the target.
        self.assertEqual([e["database"] for e in doc["errors"]], ["ghost"])
        self.assertIn(doc["errors"][0].get("target"), ("local", "", None))
        self.assertTrue(doc["errors"][0]["error"])
        self.assertFalse(os.path.exists(path))
        self.assert_intact()

    def test_not_a_database(self):
        path = self.env.add_database("text")
        with open(path, "w") as f:
            f.write("this is not an SQLite database\n" * 200)
        before = T.file_bytes(path)
        listing = sorted(os.listdir(os.path.dirname(path)))
        self.backup_fails("text", words=("not a database", "sqlite", "file is not", "format"))
        self.assertEqual(T.file_bytes(path), before, "the text file was modified")
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))), listing,
                         "files appeared next to the text file")
        self.assert_intact()

    def test_zero_byte_file(self):
        """A 0-byte file is an empty SQLite database to SQLite: either it is backed up
        as one, or refused with a clear error. Never a crash, never a write to it."""
        path = self.env.add_database("zero")
        open(path, "w").close()
        rc, out, err = self.env.ctl("backup", "zero", json_out=True)
        T.assert_no_crash(rc, out, err)
        self.assertIn(rc, (0, 1), T.describe(["backup", "zero"], rc, out, err))
        self.assertEqual(os.path.getsize(path), 0, "sqlbak wrote to the 0-byte source")
        if rc == 0:
            b = T.json.loads(out)["backups"][0]
            restored = self.env.restore(b["id"])
            self.assertEqual(T.integrity_check(restored), "ok")
            self.assertEqual(T.master_rows(restored), [])
        else:
            self.assertClearError(rc, out, err, 1, names=("zero",))
        self.assert_intact()

    def as_unprivileged_user(self, keep_owned=()):
        """The command prefix that runs sqlbakctl as a user without special rights: as
        root, nobody (who then owns the environment but the paths in KEEP_OWNED); as
        anyone else, that user."""
        if not IS_ROOT:
            return []
        if shutil.which("setpriv") is None:
            self.skipTest("setpriv (util-linux) is missing")
        for d, _, files in os.walk(self.env.root):
            for name in [d] + [os.path.join(d, f) for f in files]:
                if not any(name.startswith(k) for k in keep_owned):
                    os.chown(name, 65534, 65534)
        os.chmod(self.env.root, 0o755)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

    def run_ctl_as(self, prefix, *args):
        cmd = prefix + [T.SQLBAKCTL] + self.env.ctl_args(*args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return cmd, proc

    def test_unreadable_database(self):
        path = self.env.add_database("secret")
        T.create_db(path, rows=10)
        prefix = self.as_unprivileged_user(keep_owned=(path,))
        os.chmod(path, 0)
        try:
            cmd, proc = self.run_ctl_as(prefix, "backup", "secret")
            self.assertClearError(proc.returncode, proc.stdout, proc.stderr, 1, names=("secret", path),
                                  words=("permission", "denied", "readable", "access"), args=cmd)
        finally:
            os.chmod(path, 0o600)
        self.assertNotIn("secret", [b["database"] for b in self.env.list()])
        self.assert_intact()

    def test_wal_database_in_a_directory_sqlbak_cannot_write(self):
        """A WAL database needs its -shm: when no application has it open, the reader
        creates -wal and -shm beside it. A user who may read the database but not write
        its directory gets an error naming the database, the directory and the fix,
        not SQLite's "attempt to write a readonly database"."""
        appdir = self.env.path("app")
        os.makedirs(appdir)
        path = self.env.add_database("shop", os.path.join(appdir, "shop.db"))
        T.create_db(path, rows=50, journal_mode="wal")
        self.assertFalse(os.path.exists(path + "-shm"), "the fixture left a -shm behind")
        prefix = self.as_unprivileged_user(keep_owned=(appdir,))
        os.chmod(appdir, 0o755 if IS_ROOT else 0o555)
        self.addCleanup(os.chmod, appdir, 0o755)
        os.chmod(path, 0o644)
        before = T.file_bytes(path)
        cmd, proc = self.run_ctl_as(prefix, "backup", "shop")
        self.assertClearError(proc.returncode, proc.stdout, proc.stderr, 1,
                              names=("shop", path, appdir, "ReadWritePaths=" + appdir),
                              words=("WAL mode",), args=cmd)
        self.assertNotIn("attempt to write a readonly database.", proc.stderr.split("SQLite said")[0])
        self.assertEqual(T.file_bytes(path), before, "the database was modified")
        self.assertNotIn("shop", [b["database"] for b in self.env.list()])
        # The fix the message gives works: write access to the directory.
        os.chmod(appdir, 0o777)
        cmd, proc = self.run_ctl_as(prefix, "backup", "shop")
        self.assertEqual(proc.returncode, 0, T.describe(cmd, proc.returncode, proc.stdout, proc.stderr))
        self.assertIn("shop", [b["database"] for b in self.env.list()])
        self.assertEqual(T.file_bytes(path), before, "the database was modified")
        self.assert_intact()

    # --- repositories ---------------------------------------------------------------

    def test_missing_repository_directory(self):
        env = T.TempEnv(databases={"good": self.good}, target_path=self.env.path("missing-repo"),
                        create_target=False)
        self.addCleanup(env.cleanup)
        rc, out, err = env.ctl("backup", "good")
        self.assertClearError(rc, out, err, 1, names=("good",),
                              words=(env.target, "local"))
        self.assertIn(env.target, self.error_text(out, err),
                      "the error does not name the missing directory")
        self.assertFalse(os.path.exists(env.target), "sqlbak created the missing target directory")
        for cmd in (["list"], ["verify", "--all"]):
            rc, out, err = env.ctl(*cmd)
            self.assertClearError(rc, out, err, 1, names=(env.target,),
                                  args=[T.SQLBAKCTL] + env.ctl_args(*cmd))
        self.assert_intact()

    def test_read_only_repository(self):
        env = self.env
        if IS_ROOT:
            # chmod does not stop root: use a tmpfs remounted read-only.
            ro_target = env.mount_tmpfs(env.path("ro-repo"), "64m")
            renv = T.TempEnv(databases={"good": self.good}, target_path=ro_target)
            self.addCleanup(renv.cleanup)
            first = renv.backup_one("good")["id"]
            r = subprocess.run(["mount", "-o", "remount,ro", ro_target], capture_output=True, text=True)
            if r.returncode != 0:
                self.skipTest("cannot remount tmpfs read-only: %s" % r.stderr.strip())
            make_writable = lambda: subprocess.run(["mount", "-o", "remount,rw", ro_target], check=True)
        else:
            renv = T.TempEnv(databases={"good": self.good})
            self.addCleanup(renv.cleanup)
            first = renv.backup_one("good")["id"]
            os.chmod(renv.target, 0o555)
            for dirpath, dirs, _files in os.walk(renv.target):
                for d in dirs:
                    os.chmod(os.path.join(dirpath, d), 0o555)
            def make_writable():
                for dirpath, dirs, _files in os.walk(renv.target):
                    for d in dirs:
                        os.chmod(os.path.join(dirpath, d), 0o755)
                os.chmod(renv.target, 0o755)
        con = T.connect(self.good)
        con.execute("UPDATE t SET b = randomblob(200) WHERE id < 100")
        con.close()
        try:
            before = T.files_under(renv.target)
            rc, out, err = renv.ctl("backup", "good")
            self.assertClearError(rc, out, err, 1, names=("good",),
                                  words=("read-only", "read only", "permission", "denied",
                                         renv.target, "local"))
            self.assertEqual(T.files_under(renv.target), before)
        finally:
            make_writable()
        self.assertEqual(renv.list_ids(), [first])
        renv.verify_all(check=0)
        self.assert_intact()

    def full_disk_setup(self):
        env = self.env
        small_target = env.mount_tmpfs(env.path("small-repo"), "2m")
        fenv = T.TempEnv(target_path=small_target)
        self.addCleanup(fenv.cleanup)
        small = fenv.add_database("small")
        T.create_db(small, rows=100, row_bytes=300)
        first = fenv.backup_one("small")["id"]
        used_before = shutil.disk_usage(small_target).used
        big = fenv.add_database("big")
        T.create_db(big, page_size=4096, rows=10 * 1024, row_bytes=1000)  # ~10 MiB random
        rc, out, err = fenv.ctl("backup", "big")
        self.assertClearError(rc, out, err, 1, names=("big",), words=("space",),
                              args=[T.SQLBAKCTL] + fenv.ctl_args("backup", "big"))
        err = self.error_text(out, err)
        self.assertTrue("local" in err or small_target in err,
                        "the error does not name the target\n%s" % err)
        return fenv, small_target, small, first, used_before

    @unittest.skipUnless(IS_ROOT, "full-disk test needs root to mount a small tmpfs")
    def test_full_disk(self):
        fenv, _target, _small, first, _used = self.full_disk_setup()
        self.assertEqual(fenv.list_ids(), [first], "a failed backup is listed")
        fenv.verify_all(check=0)
        self.assert_intact()

    # --- configuration --------------------------------------------------------------

    def write_bad_config(self, text):
        path = self.env.path("bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def config_fails(self, path, line=None, names=()):
        for args in (["-c", path, "--offline", "list"], ["-c", path, "--offline", "config", "check"],
                     ["--offline", "config", "check", path]):
            with self.subTest(args=args):
                rc, out, err = T.run_ctl(args)
                info = T.describe([T.SQLBAKCTL] + args, rc, out, err)
                T.assert_no_crash(rc, out, err, args)
                self.assertEqual(rc, 1, info)
                lines = [l for l in err.splitlines() if l.strip()]
                self.assertTrue(lines, info)
                located = [l for l in lines if re.match(r"^.+:\d+:\d+: ", l)]
                self.assertTrue(located, "no FILE:LINE:COLUMN: error\n" + info)
                self.assertTrue(any(l.startswith(path + ":") for l in located),
                                "the error does not start with the file name\n" + info)
                if line is not None:
                    self.assertTrue(any(l.startswith("%s:%d:" % (path, line)) for l in located),
                                    "the error is not on line %d\n%s" % (line, info))
                for n in names:
                    self.assertTrue(any(n in l for l in located), "error does not name %r\n%s" % (n, info))

    def test_broken_yaml(self):
        text = self.env.config_text().replace(
            "databases:", "databases:\n  - name: [unclosed, flow\n    path: \"/x.db\n", 1)
        self.config_fails(self.write_bad_config(text))

    def test_broken_yaml_unterminated_quote(self):
        text = self.env.config_text().replace("state_dir: ", "state_dir: \"/unterminated\n", 1)
        self.config_fails(self.write_bad_config(text))

    def test_unknown_key(self):
        lines = self.env.config_text().splitlines()
        i = lines.index("defaults:")
        lines.insert(i + 1, "  frobnicate_level: 3")
        path = self.write_bad_config("\n".join(lines) + "\n")
        self.config_fails(path, line=i + 2, names=("frobnicate_level",))
        # Column: the key starts in column 3.
        rc, out, err = T.run_ctl(["--offline", "config", "check", path])
        self.assertIn("%s:%d:3:" % (path, i + 2), err)

    def test_unknown_key_in_database(self):
        lines = self.env.config_text().splitlines()
        i = lines.index("    path: %s" % T.json.dumps(self.good))
        lines.insert(i + 1, "    colour: blue")
        path = self.write_bad_config("\n".join(lines) + "\n")
        self.config_fails(path, line=i + 2, names=("colour",))

    # --- restore --------------------------------------------------------------------

    def test_restore_refuses_existing_path(self):
        target = self.env.path("out", "exists.db")
        with open(target, "wb") as f:
            f.write(b"precious data, not a database\n" * 100)
        before = T.file_bytes(target)
        listing = sorted(os.listdir(self.env.out))
        args = self.env.ctl_args("restore", self.good_backup, "--to", target)
        rc, out, err = self.env.ctl("restore", self.good_backup, "--to", target)
        self.assertClearError(rc, out, err, 1, names=(target,), args=[T.SQLBAKCTL] + args)
        self.assertEqual(T.file_bytes(target), before)
        self.assertEqual(sorted(os.listdir(self.env.out)), listing)
        # By time, too.
        rc, out, err = self.env.ctl("restore", "good", "--at", T.utc_iso(time.time() + 5),
                                    "--to", target)
        self.assertClearError(rc, out, err, 1, names=(target,))
        self.assertEqual(T.file_bytes(target), before)
        # With --force it is replaced.
        self.env.restore(self.good_backup, to=target, force=True)
        self.assertEqual(T.db_digest(target), T.db_digest(self.good))
        self.assert_intact()

    def test_unknown_backup_id(self):
        bogus = "20200101T000000Z-abcdef"
        to = self.env.path("out", "nope.db")
        for cmd in (["restore", bogus, "--to", to], ["show", bogus], ["verify", bogus]):
            with self.subTest(cmd=cmd[0]):
                rc, out, err = self.env.ctl(*cmd)
                self.assertClearError(rc, out, err, 1, names=(bogus,),
                                      args=[T.SQLBAKCTL] + self.env.ctl_args(*cmd))
        self.assertFalse(os.path.exists(to))
        # Not an id and not a database name.
        rc, out, err = self.env.ctl("restore", "nonsense", "--to", to)
        self.assertClearError(rc, out, err, (1, 2), names=("nonsense",))
        self.assertFalse(os.path.exists(to))
        self.assert_intact()

    def test_unknown_database(self):
        rc, out, err = self.env.ctl("backup", "nosuchdb")
        self.assertClearError(rc, out, err, (1, 2), names=("nosuchdb",))
        rc, out, err = self.env.ctl("restore", "nosuchdb", "--at", T.utc_iso(time.time()),
                                    "--to", self.env.path("out", "x.db"))
        self.assertClearError(rc, out, err, (1, 2), names=("nosuchdb",))
        self.assert_intact()

    def test_usage_errors(self):
        to = self.env.path("out", "u.db")
        cases = [
            ["frobnicate"],
            ["restore"],
            ["restore", self.good_backup],            # no --to
            ["restore", self.good_backup, "--to"],    # --to without a value
            ["show"],
            ["list", "--no-such-option"],
            ["backup", "--no-such-option"],
        ]
        for cmd in cases:
            with self.subTest(cmd=cmd):
                args = self.env.ctl_args(*cmd)
                rc, out, err = self.env.ctl(*cmd)
                T.assert_no_crash(rc, out, err, args)
                self.assertEqual(rc, 2, T.describe([T.SQLBAKCTL] + args, rc, out, err))
                self.assertTrue(err.strip(), "usage error without a message")
        rc, out, err = self.env.ctl("restore", "good", "--at", "not-a-time", "--to", to)
        self.assertClearError(rc, out, err, (1, 2), names=("not-a-time",), one_line=False)
        self.assertFalse(os.path.exists(to))
        self.assert_intact()


if __name__ == "__main__":
    T.main()
