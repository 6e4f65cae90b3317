#!/usr/bin/env python3
"""Repacking during prune, through the real `sqlbakctl --offline rotate`.

A history of backups of a database that changes a lot leaves, after rotation,
packs that remaining backups still need a little of. What must hold:
  - `rotate --dry-run` says what it would repack and changes nothing;
  - rotate repacks them: the target shrinks below what deleting whole packs
    alone would leave, `verify --all` passes, every kept backup keeps its id and
    restores to exactly what the database held when it was taken, and no
    garbage is left; a second rotate has nothing to do;
  - rotate killed with SIGKILL at random moments, many of them while it
    repacks: after each, every manifest names only objects that exist and
    `verify --all` passes; the next rotate finishes the job and leaves exactly
    what an uninterrupted one leaves (repacking is deterministic).
"""

import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import sqlbaktest as T

BASE = int(datetime.datetime(2026, 4, 6, 9, 0, tzinfo=datetime.timezone.utc).timestamp())
ROWS = 2500  # one row of 3000 random bytes per 4 KiB page: ~10 MiB


def objects(root, prefix):
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(root, prefix)):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                out[os.path.relpath(p, root)] = os.path.getsize(p)
            except FileNotFoundError:
                pass  # removed while we looked: a rotate runs beside the watcher
    return out


def snapshot(root):
    """Every object key with the SHA-256 of its content (locks and tmp left out)."""
    snap = {}
    for prefix in ("packs", "index", "manifests"):
        for key in objects(root, prefix):
            with open(os.path.join(root, key), "rb") as f:
                snap[key] = hashlib.sha256(f.read()).hexdigest()
    return snap


def manifests(root):
    out = {}
    for key in objects(root, "manifests"):
        with open(os.path.join(root, key)) as f:
            out[key] = json.load(f)
    return out


def needed(root):
    return {p["id"] for doc in manifests(root).values() for p in doc["manifest"]["packs"]}


def names(root, prefix):
    return {os.path.basename(k) for k in objects(root, prefix)}


def store_bytes(root):
    return sum(objects(root, "packs").values()) + sum(objects(root, "index").values())


class Repack(T.EnvTestCase):
    env_kwargs = dict(extra_defaults={
        "retention": "{keep_last: 2, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, "
                     "keep_yearly: 0, keep_within: 0s}",
        "step_pages": 1024,
        "verify": "quick",
    })

    def build_history(self):
        """Four backups; between them, rows change so that once the two oldest
        are forgotten their packs are 30 % and 43 % live. Returns
        [(id, digest)] oldest first."""
        path = self.env.add_database("shop")
        T.create_db(path, script="CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);")
        con = T.connect(path)
        con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
                    "INSERT INTO t(b) SELECT randomblob(3000) FROM c", (ROWS,))
        history = []
        churn = [None, "id % 10 < 7", "id % 10 < 4", "id % 10 >= 7"]
        for i, where in enumerate(churn):
            if where:
                con.execute("UPDATE t SET b = randomblob(3000) WHERE " + where)
            b = self.env.backup_one("shop", env=T.faketime_env(BASE + 3600 * (i + 1)))
            history.append((b["id"], T.db_digest(path)))
        con.close()
        return history

    def rotate(self, *args, check=0):
        return self.env.ctl_json("rotate", *args, check=check)

    def check_kept(self, history, kept_ids):
        self.assertEqual(set(self.env.list_ids()), set(kept_ids))
        for bid, digest in history:
            if bid in kept_ids:
                restored = self.env.restore(bid)
                self.assertEqual(T.db_digest(restored), digest, "backup %s restored differently" % bid)
                self.assertEqual(T.integrity_check(restored), "ok")
                os.unlink(restored)

    def test_rotate_repacks_mostly_unused_packs(self):
        history = self.build_history()
        target = self.env.target
        kept_ids = [bid for bid, _ in history[-2:]]
        before = snapshot(target)
        bytes_before = store_bytes(target)

        dry = self.rotate("--dry-run")
        self.assertEqual(snapshot(target), before, "--dry-run changed the target")
        p = dry["prunes"][0]
        self.assertEqual(p["packs_repacked"], 2, p)
        self.assertEqual(p["manifests_rewritten"], 2, p)
        self.assertGreater(p["bytes_reclaimed"], 4 << 20, p)
        rc, out, _ = self.env.ctl("rotate", "--dry-run", check=0)
        self.assertRegex(out, r"repack local: would repack 2 mostly unused pack")

        done = self.rotate()
        self.assertFalse(done["errors"], done)
        p = done["prunes"][0]
        self.assertEqual(p["packs_repacked"], 2, p)
        self.assertEqual(p["manifests_rewritten"], 2, p)
        self.assertEqual(p["repack_problems"], [], p)
        bytes_after = store_bytes(target)
        sys.stderr.write("target: %d bytes before, %d after rotate with repack (reclaimed by repack: %d, "
                         "written: %d)\n" % (bytes_before, bytes_after, p["bytes_reclaimed"], p["bytes_written"]))
        self.assertEqual(bytes_before - bytes_after, p["bytes_removed"] - p["bytes_written"])
        self.assertLess(bytes_after, bytes_before * 0.6)
        # No garbage: exactly the needed packs, each with its index.
        self.assertEqual(names(target, "packs"), needed(target))
        self.assertEqual(names(target, "index"), needed(target))
        # Same backups, same ids; their pages elsewhere.
        self.env.verify_all(check=0)
        self.check_kept(history, kept_ids)
        rc, out, _ = self.env.ctl("rotate", check=0)
        self.assertNotIn("repack", out, "nothing should be left to repack")
        again = self.rotate()
        self.assertEqual(again["prunes"][0]["packs_repacked"], 0)
        self.assertEqual(again["prunes"][0]["packs_removed"], 0)
        # A backup after the repack deduplicates against the new packs.
        b = self.env.backup_one("shop", env=T.faketime_env(BASE + 3600 * 10))
        self.assertEqual(T.db_digest(self.env.restore(b["id"])), history[-1][1])

    def test_killed_rotate_during_repack(self):
        history = self.build_history()
        target = self.env.target
        kept_ids = [bid for bid, _ in history[-2:]]
        pristine = self.env.path("pristine")
        shutil.copytree(target, pristine)
        pristine_snap = snapshot(pristine)

        def reset():
            shutil.rmtree(target)
            shutil.copytree(pristine, target)

        # The uninterrupted rotate: the reference, run under the fault shim in trace
        # mode so that every write, fsync and rename it makes on the target is
        # numbered; the kills below land exactly at chosen ones of those calls.
        log = self.env.path("faults.log")
        ops = "write,fsync,rename"
        p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("rotate"), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True,
                           env=T.fault_env(target, log, ops, action="kill", nth=10 ** 9, trace=True))
        out = p.communicate()[0]
        self.assertEqual(p.returncode, 0)
        self.assertRegex(out, r"repack local: repacked 2 mostly unused pack\(s\) into .* \(1 pack\(s\)\), freed ")
        calls = [(seq, op, path) for kind, seq, op, path in T.fault_log(log) if kind == "match"]
        renames = [seq for seq, op, path in calls if op == "rename"]
        others = [seq for seq, op, path in calls if op != "rename"]
        self.assertTrue(any("/packs/" in path for _, op, path in calls if op == "rename"),
                        "the reference rotate wrote no pack: %r" % calls[:20])
        reference = snapshot(target)
        self.check_kept(history, kept_ids)
        sys.stderr.write("reference rotate: %d writes and fsyncs, %d renames on the target\n"
                         % (len(others), len(renames)))

        landed = {}
        for trial in range(12):
            reset()
            if trial < 2:
                # Anywhere in the whole run.
                p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("rotate"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(self.rng.uniform(0.0, 1.5))
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            else:
                # Just after a new object landed, or before one of the writes and
                # fsyncs that build it.
                after_rename = trial % 2 == 0
                # Every rename gets its turn (the first ones are the new pack and
                # index: the kill lands while repacking); the writes are drawn.
                nth = renames[(trial // 2 - 1) % len(renames)] if after_rename else self.rng.choice(others)
                env = T.fault_env(target, log, ops, action="kill_after" if after_rename else "kill", nth=nth)
                p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("rotate"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                p.wait()
                self.assertEqual(p.returncode, -signal.SIGKILL,
                                 "the shim did not kill rotate at call %d: %r" % (nth, T.fault_log(log)))
            state = self.classify(target, pristine_snap, reference)
            landed[state] = landed.get(state, 0) + 1

            # Whatever was interrupted: every manifest names objects that exist,
            # and every backup listed verifies.
            self.assertLessEqual(needed(target), names(target, "packs"), state)
            self.assertLessEqual(needed(target), names(target, "index"), state)
            self.assertGreaterEqual(set(self.env.list_ids()), set(kept_ids), state)
            self.env.verify_all(check=0)

            # The next rotate finishes the job: exactly the uninterrupted result.
            done = self.rotate()
            self.assertFalse(done["errors"], done)
            self.assertEqual(snapshot(target), reference, "after a kill (%s), the next rotate left a different "
                             "target than an uninterrupted one" % state)
            tmp = os.path.join(target, "tmp")
            self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [],
                             "a killed rotate's temporary files were left behind")
        sys.stderr.write("kills landed: %s\n" % json.dumps(landed, sort_keys=True))
        self.assertGreater(landed.get("repacking", 0) + landed.get("rewriting manifests", 0), 0,
                           "no kill landed while rotate repacked: the test proved nothing (%s)" % landed)
        self.check_kept(history, kept_ids)

    @staticmethod
    def classify(target, pristine_snap, reference):
        snap = snapshot(target)
        if snap == pristine_snap:
            return "before anything"
        if snap == reference:
            return "after everything"
        new_packs = {k for k in snap if k.startswith("packs/") and k not in pristine_snap}
        changed_manifests = {k for k in snap if k.startswith("manifests/") and snap[k] != pristine_snap.get(k)}
        old_left = {k for k in pristine_snap if k.startswith("packs/") and k not in reference and k in snap}
        if not new_packs:
            return "removing manifests"
        if not changed_manifests:
            return "repacking"
        if any(k.startswith("manifests/") and snap[k] != reference.get(k) for k in snap):
            return "rewriting manifests"
        return "deleting" if old_left else "deleting indexes"


if __name__ == "__main__":
    T.main()
