#!/usr/bin/env python3
"""I/O errors and kills at exact points of the real `sqlbakctl --offline`.

The LD_PRELOAD shim tests/tools/fault_inject.c ($SQLBAK_TOOLS_DIR/libfault_inject.so)
fails one chosen call under the target directory with EIO (or ENOSPC), or SIGKILLs
the process at it: the write or the fsync of a pack (a file starting with
"SQLBAKPK"), the write of an index ("SQLBAKIX"), the rename of the manifest, a read
of a pack during restore and verify, a read of an index when a backup starts.

After each I/O error: exit 1 (docs: SPEC "1 the operation failed"), one line on
stderr naming the database or backup, the target and the file or object, no
temporary file left in the target's tmp/, nothing new listed, every earlier backup
still verifies, and the next backup succeeds and restores exactly.
After each kill: nothing half-written is listed (a kill after the manifest's rename
lists a complete backup), `verify --all` passes and the next backup succeeds and
removes the dead process's temporary files.
"""

import glob
import os

import sqlbaktest as T


class IoFaults(T.EnvTestCase):

    def setUp(self):
        super().setUp()
        self.db = self.env.add_database("app")
        T.create_db(self.db, rows=4000, row_bytes=300, journal_mode="wal")
        self.first = self.env.backup_one("app")
        self.log = self.env.path("faults.log")

    # --- helpers ------------------------------------------------------------------

    def change(self):
        """Changes a third of the rows, so that the next backup stores a new pack."""
        con = T.connect(self.db)
        con.execute("UPDATE t SET b = randomblob(300) WHERE id % 3 = ?", (self.rng.randrange(3),))
        con.close()

    def fault_env(self, ops, **fault):
        return T.fault_env(self.env.target, self.log, ops, **fault)

    def run_faulty(self, args, **fault):
        """Runs sqlbakctl ARGS under the shim; returns (rc, out, err, faults): FAULTS are
        the log lines of the injected faults, [op, path, action]."""
        full = self.env.ctl_args(*args)
        rc, out, err = T.run_ctl(full, env=self.fault_env(**fault))
        faults = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                faults = [l.split()[2:] for l in f if l.startswith("fault ")]
        self.assertTrue(faults, "the shim injected nothing: the test proved nothing\n" +
                        T.describe([T.SQLBAKCTL] + full, rc, out, err))
        return rc, out, err, faults

    def manifests(self):
        return sorted(glob.glob(os.path.join(self.env.target, "manifests", "*", "*.json")))

    def temporaries(self):
        d = os.path.join(self.env.target, "tmp")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def assert_unchanged_and_recovers(self, listed_before, manifests_before):
        """Nothing new is listed, every backup verifies, the next backup succeeds and
        restores to the database's current state."""
        self.assertEqual(self.env.list_ids(), listed_before, "a failed backup is listed")
        self.assertEqual(self.manifests(), manifests_before, "a failed backup left a manifest")
        self.env.verify_all(check=0)
        digest = T.db_digest(self.db)
        b = self.env.backup_one("app")
        self.assertEqual(T.db_digest(self.env.restore(b["id"])), digest)
        self.env.verify_all(check=0)

    def backup_fails(self, words, **fault):
        """A backup under FAULT: exit 1, one clear line; returns (err, faults)."""
        self.change()
        listed, manifests = self.env.list_ids(), self.manifests()
        rc, out, err, faults = self.run_faulty(["backup", "app"], **fault)
        self.assertClearError(rc, out, err, expected_rc=1,
                              names=["app", "local", self.env.target], words=words)
        self.assertEqual(self.temporaries(), [], "a failed put left its temporary file")
        self.assert_unchanged_and_recovers(listed, manifests)
        return err, faults

    # --- EIO / ENOSPC while writing -------------------------------------------------

    def test_eio_writing_a_pack(self):
        err, faults = self.backup_fails(["input/output error"], ops="write", magic="SQLBAKPK")
        self.assertEqual(faults[0][0], "write")
        self.assertIn(faults[0][1], err, "the error does not name the file that failed")

    def test_eio_on_fsync_of_a_pack(self):
        err, faults = self.backup_fails(["input/output error"], ops="fsync", magic="SQLBAKPK")
        self.assertEqual(faults[0][0], "fsync")
        self.assertIn("fsync", err)
        self.assertIn(faults[0][1], err)

    def test_enospc_writing_an_index(self):
        err, faults = self.backup_fails(["no space"], ops="write", magic="SQLBAKIX",
                                        action="enospc")
        self.assertIn(faults[0][1], err)

    def test_eio_on_rename_of_the_manifest(self):
        err, faults = self.backup_fails(["input/output error"], ops="rename", path="/manifests/")
        manifest = faults[0][1]
        self.assertRegex(manifest, r"/manifests/app/%s\.json$" % T.BACKUP_ID_RE.pattern)
        self.assertIn(manifest, err, "the error does not name the manifest")

    def test_eio_reading_an_index_when_a_backup_starts(self):
        self.backup_fails(["input/output error"], ops="read", path="/index/")

    # --- EIO while reading: restore and verify ----------------------------------------

    def pack_of(self, backup_id):
        doc = self.env.ctl_json("show", backup_id)
        m = doc.get("manifest", doc)
        return m["packs"][0]["id"]

    def test_eio_reading_a_pack_during_restore(self):
        bid = self.first["id"]
        pack = self.pack_of(bid)
        dest = os.path.join(self.env.out, "restored.db")
        rc, out, err, faults = self.run_faulty(["restore", bid, "--to", dest],
                                               ops="read", path="/packs/")
        self.assertClearError(rc, out, err, expected_rc=1, names=[bid, "packs/"],
                              words=["input/output error"])
        self.assertIn(pack, faults[0][1])
        self.assertIn(pack, err, "the error does not name the pack")
        self.assertFalse(os.path.exists(dest), "a failed restore left its destination")
        self.assertEqual([f for f in os.listdir(self.env.out) if "sqlbak-restore" in f], [],
                         "a failed restore left its temporary file")
        # The disk is fine again: the same restore succeeds, and so does the next backup.
        self.env.restore(bid, to=dest)
        self.assertEqual(T.integrity_check(dest), "ok")
        self.assert_unchanged_and_recovers(self.env.list_ids(), self.manifests())

    def test_eio_reading_a_pack_during_verify(self):
        self.change()
        second = self.env.backup_one("app")
        for args in (["verify", second["id"]], ["verify", "--all"]):
            with self.subTest(args=args):
                rc, out, err, faults = self.run_faulty(args, ops="read", path="/packs/")
                # One read fails: exactly the backup that read it is named as failing.
                self.assertClearError(rc, out, err, expected_rc=1, names=["packs/"],
                                      words=["input/output error"])
                failed_pack = os.path.basename(faults[0][1])
                self.assertIn(failed_pack, err)
                named = [i for i in (self.first["id"], second["id"]) if i in err]
                self.assertEqual(len(named), 1, "the error names %r\n%s" % (named, err))
        self.assert_unchanged_and_recovers(self.env.list_ids(), self.manifests())

    # --- SIGKILL at chosen points -----------------------------------------------------

    def killed_backup(self, **fault):
        """A backup SIGKILLed by the shim; returns the log's fault line."""
        self.change()
        full = self.env.ctl_args("backup", "app")
        rc, out, err = T.run_ctl(full, env=self.fault_env(**fault))
        self.assertEqual(rc, -9, "not killed at the chosen point\n" +
                         T.describe([T.SQLBAKCTL] + full, rc, out, err))
        with open(self.log) as f:
            return [l.split()[2:] for l in f if l.startswith("fault ")][0]

    def assert_recovers_after_kill(self, listed_before):
        self.assertEqual(self.env.list_ids(), listed_before)
        self.env.verify_all(check=0)
        leftovers = self.temporaries()
        digest = T.db_digest(self.db)
        b = self.env.backup_one("app")
        self.assertEqual(T.db_digest(self.env.restore(b["id"])), digest)
        self.env.verify_all(check=0)
        # The dead process's temporary files went with the next backup's lock.
        self.assertEqual(set(leftovers) & set(self.temporaries()), set())

    def test_kill_mid_pack(self):
        # Before the pack's write (an empty temporary file), and after it (written,
        # never fsynced nor renamed).
        for action in ("kill", "kill_after"):
            with self.subTest(action=action):
                listed = self.env.list_ids()
                where = self.killed_backup(ops="write", magic="SQLBAKPK", action=action)
                self.assertIn("/tmp/", where[1])
                self.assertTrue(self.temporaries(), "the kill left no temporary file: wrong point")
                self.assert_recovers_after_kill(listed)

    def test_kill_at_rename_of_a_pack(self):
        # The pack written and fsynced, not in place, its index not written yet: the
        # next backup (of the same state) must store those pages again, not trust
        # an index whose pack is missing.
        listed = self.env.list_ids()
        where = self.killed_backup(ops="rename", path="/packs/", action="kill")
        self.assertFalse(os.path.exists(where[1]))
        self.assert_recovers_after_kill(listed)

    def test_kill_between_pack_and_index(self):
        # The pack is in place (renamed, its directory fsynced); its index is not.
        listed = self.env.list_ids()
        self.killed_backup(ops="rename", path="/index/", action="kill")
        self.assert_recovers_after_kill(listed)

    def test_kill_before_rename_of_the_manifest(self):
        # Every pack and index stored, the manifest written and fsynced: not listed.
        listed = self.env.list_ids()
        where = self.killed_backup(ops="rename", path="/manifests/", action="kill")
        self.assertFalse(os.path.exists(where[1]))
        self.assert_recovers_after_kill(listed)

    def test_kill_after_rename_of_the_manifest(self):
        # The commit point has passed: the backup exists, complete, before its
        # directory's fsync and before the catalog records it.
        listed = self.env.list_ids()
        where = self.killed_backup(ops="rename", path="/manifests/", action="kill_after")
        digest = T.db_digest(self.db)
        bid = os.path.basename(where[1])[:-len(".json")]
        self.assertEqual(self.env.list_ids(), [bid] + listed)
        self.env.verify_all(check=0)
        self.assertEqual(T.db_digest(self.env.restore(bid)), digest)
        self.assert_recovers_after_kill([bid] + listed)


if __name__ == "__main__":
    T.main()
