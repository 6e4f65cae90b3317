#!/usr/bin/env python3
"""`sqlbakctl rotate` and prune, through `sqlbakctl --offline`.

Backups are taken at chosen times (libfaketime) so that retention has a history
to work on. What must hold:
  - `--dry-run` changes nothing on the target;
  - rotate removes exactly what the policy does not keep (checked against an
    independent computation of restic's rules here), keeps the newest backup,
    and says which rule kept each backup;
  - after rotate and prune, `verify --all` passes, every kept backup restores to
    exactly what the database held when it was taken, and the target shrank;
  - no pack that a remaining backup needs is deleted, and every pack no backup
    needs is (no garbage left once the prune has finished);
  - a prune killed with SIGKILL at random moments leaves the target consistent
    and the next rotate finishes the job;
  - a backup running while a prune wants the target is not broken by it.
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
import unittest

import sqlbaktest as T

DAY = 86400
BASE = int(datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.timezone.utc).timestamp())


def target_objects(root, prefix):
    out = {}
    base = os.path.join(root, prefix)
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


def target_snapshot(root):
    """Every object key with its size and content hash (locks and tmp left out)."""
    snap = {}
    for prefix in ("config", "packs", "index", "manifests"):
        p = os.path.join(root, prefix)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                snap[prefix] = hashlib.sha256(f.read()).hexdigest()
            continue
        for key in target_objects(root, prefix):
            with open(os.path.join(root, key), "rb") as f:
                snap[key] = hashlib.sha256(f.read()).hexdigest()
    return snap


def needed_packs(root):
    """Pack names that the manifests on the target reference (read here, not by sqlbak)."""
    needed = set()
    for key in target_objects(root, "manifests"):
        with open(os.path.join(root, key)) as f:
            doc = json.load(f)
        for p in doc["manifest"]["packs"]:
            needed.add(p["id"])
    return needed


def stored_packs(root):
    return {os.path.basename(k) for k in target_objects(root, "packs")}


def stored_indexes(root):
    return {os.path.basename(k) for k in target_objects(root, "index")}


def expected_kept(times, keep_last, keep_daily, keep_weekly):
    """restic's forget rules for keep_last / keep_daily / keep_weekly in UTC, written
    independently of sqlbak: walk newest first; a rule keeps a backup when the
    backup's bucket differs from the last bucket that rule kept and the rule has
    count left."""
    order = sorted(times, key=lambda t: -t[1])
    kept = {}
    rules = [
        ("last", keep_last, lambda ts: ts),  # every backup its own bucket
        ("daily", keep_daily, lambda ts: datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date()),
        ("weekly", keep_weekly,
         lambda ts: datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isocalendar()[:2]),
    ]
    for name, count, bucket in rules:
        last = None
        left = count
        for bid, ts in order:
            if left <= 0:
                break
            b = bucket(ts) if name != "last" else bid
            if b != last:
                kept.setdefault(bid, []).append(name)
                last = b
                left -= 1
    return kept


class Rotate(T.EnvTestCase):
    env_kwargs = dict(extra_defaults={
        "retention": "{keep_last: 2, keep_hourly: 0, keep_daily: 3, keep_weekly: 2, keep_monthly: 0, "
                     "keep_yearly: 0, keep_within: 0s}",
        "step_pages": 64,
    })

    def build_history(self, db_name="shop", count=12, seed_rows=400):
        """Takes COUNT backups at spread-out fake times, changing the database in
        between (deletes too, so that old pages become garbage). Returns
        [(id, unix_seconds, digest_of_content)] oldest first."""
        path = self.env.add_database(db_name)
        T.create_db(path, script="CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);")
        con = T.connect(path)
        history = []
        when = BASE
        for i in range(count):
            con.execute("BEGIN")
            con.execute("INSERT INTO t(v) SELECT randomblob(900) FROM "
                        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
                        "SELECT x FROM c)", (seed_rows,))
            if i % 3 == 2:
                con.execute("DELETE FROM t WHERE id % 4 = ?", (i % 4,))
            con.execute("COMMIT")
            con.execute("VACUUM")
            # Several backups on some days, gaps of days between others.
            when += self.rng.choice([3600, 5 * 3600, DAY, DAY + 7200, 3 * DAY])
            b = self.env.backup_one(db_name, env=T.faketime_env(when))
            history.append((b["id"], when, T.db_digest(path)))
        con.close()
        return history

    def rotate(self, *args, when, check=0):
        return self.env.ctl_json("rotate", *args, check=check, env=T.faketime_env(when))

    def test_dry_run_then_rotate_and_prune(self):
        history = self.build_history()
        now = history[-1][1] + 60
        before = target_snapshot(self.env.target)
        bytes_before = sum(target_objects(self.env.target, "packs").values())

        dry = self.rotate("--dry-run", when=now)
        self.assertTrue(dry["dry_run"])
        self.assertEqual(target_snapshot(self.env.target), before, "--dry-run changed the target")
        self.assertEqual(len(self.env.list_ids()), len(history))

        expect = expected_kept([(bid, ts) for bid, ts, _ in history], 2, 3, 2)
        rot = dry["rotations"][0]
        self.assertEqual({k["id"]: sorted(k["reasons"]) for k in rot["kept"]},
                         {bid: sorted(r) for bid, r in expect.items()})
        removed_ids = {r["id"] for r in rot["removed"]}
        self.assertEqual(removed_ids, {bid for bid, _, _ in history} - set(expect))
        self.assertIn(history[-1][0], expect, "the newest backup must be kept")
        self.assertGreater(len(removed_ids), 0, "the generated history must give rotate work")

        # The human output names every backup with its rules.
        rc, out, _ = self.env.ctl("rotate", "--dry-run", check=0, env=T.faketime_env(now))
        for bid in expect:
            self.assertRegex(out, r"keep\s+%s.*\(.*(last|daily|weekly)" % bid)
        for bid in removed_ids:
            self.assertRegex(out, r"would remove\s+%s" % bid)

        done = self.rotate(when=now)
        self.assertFalse(done["errors"], done)
        self.assertEqual(set(self.env.list_ids()), set(expect))
        prune = done["prunes"][0]
        self.assertGreater(prune["packs_removed"], 0, prune)
        bytes_after = sum(target_objects(self.env.target, "packs").values())
        self.assertLess(bytes_after, bytes_before)
        # bytes_removed counts the indexes too.
        self.assertGreaterEqual(prune["bytes_removed"], bytes_before - bytes_after)
        # Exactly the needed packs remain, each with its index.
        self.assertEqual(stored_packs(self.env.target), needed_packs(self.env.target))
        self.assertEqual(stored_indexes(self.env.target), needed_packs(self.env.target))

        self.env.verify_all(check=0)
        for bid, _, digest in history:
            if bid in expect:
                restored = self.env.restore(bid)
                self.assertEqual(T.db_digest(restored), digest, "backup %s restored differently" % bid)
                self.assertEqual(T.integrity_check(restored), "ok")

        # A second rotate at the same time has nothing to do.
        again = self.rotate(when=now)
        self.assertEqual(again["rotations"][0]["removed"], [])
        self.assertEqual(again["prunes"][0]["packs_removed"], 0)

        # The catalog has a rotate and a prune job.
        report_rows = T.connect(os.path.join(self.env.state, "catalog.db")).execute(
            "SELECT kind, result FROM jobs WHERE kind IN ('rotate','prune')").fetchall()
        self.assertIn(("rotate", "success"), report_rows)
        self.assertIn(("prune", "success"), report_rows)

    def test_killed_prune_leaves_target_consistent(self):
        history = self.build_history(count=10, seed_rows=600)
        expect = expected_kept([(bid, ts) for bid, ts, _ in history], 2, 3, 2)
        now = history[-1][1] + 60
        env = T.faketime_env(now)
        # A rotate that finishes leaves nothing for the next one to do, so the target
        # as it was before any rotate is kept aside and put back after each attempt
        # that the kill missed; the kill is aimed inside the time a whole rotate took.
        pristine = self.env.target + ".pristine"
        shutil.copytree(self.env.target, pristine, symlinks=True)
        kills = attempts = 0
        whole_rotate = 0.08
        while kills < 6 and attempts < 40:
            attempts += 1
            started = time.monotonic()
            p = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("rotate"), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(self.rng.uniform(0.0, whole_rotate))
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                kills += 1
                p.wait()
            else:
                whole_rotate = max(0.005, 0.9 * (time.monotonic() - started))
                shutil.rmtree(self.env.target)
                shutil.copytree(pristine, self.env.target, symlinks=True)
            # Whatever was interrupted: every listed backup verifies and is one we expect.
            ids = set(self.env.list_ids())
            self.assertTrue(ids >= set(expect), "a backup the policy keeps is gone")
            self.assertTrue(needed_packs(self.env.target) <= stored_packs(self.env.target),
                            "a pack that a remaining backup needs was deleted")
            self.env.verify_all(check=0)
        self.assertGreater(kills, 0, "no rotate was interrupted in %d attempts: the test proved nothing"
                           % attempts)
        shutil.rmtree(pristine)
        sys.stderr.write("[killed rotate] %d of %d attempts interrupted\n" % (kills, attempts))
        # The next full rotate finishes the job.
        self.rotate(when=now)
        self.assertEqual(set(self.env.list_ids()), set(expect))
        self.assertEqual(stored_packs(self.env.target), needed_packs(self.env.target))
        for bid, _, digest in history:
            if bid in expect:
                self.assertEqual(T.db_digest(self.env.restore(bid)), digest)
        # A new backup after all that still works and is restorable.
        b = self.env.backup_one("shop", env=T.faketime_env(now + 120))
        self.assertEqual(T.db_digest(self.env.restore(b["id"])), T.db_digest(self.env.databases["shop"]))

    def test_prune_waits_for_a_running_backup(self):
        """A backup holds the repository lock shared while it runs; a prune waits for
        it (or gives up with a clear message) and never deletes what it uses."""
        history = self.build_history(count=6)
        now = history[-1][1] + 60
        big = self.env.add_database("big")
        T.create_db(big, script="CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);")
        con = T.connect(big)
        con.execute("INSERT INTO t(v) SELECT randomblob(3000) FROM "
                    "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) "
                    "SELECT x FROM c)")
        con.commit()
        con.close()
        self.env.db_settings["big"] = {"step_pages": 8}
        self.env.write_config()
        backup = self.env.spawn([T.SQLBAKCTL] + self.env.ctl_args("backup", "big", json_out=True),
                                env=T.faketime_env(now), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        # Rotate only "shop" while "big" is being backed up to the same target.
        rc, out, err = self.env.ctl("rotate", "shop", json_out=True, check=None,
                                    env=T.faketime_env(now + 1))
        b_out, b_err = backup.communicate(timeout=600)
        self.assertEqual(backup.returncode, 0, b_err)
        big_id = json.loads(b_out)["backups"][0]["id"]
        doc = json.loads(out)
        if rc != 0:
            # The prune could not get the target in time: said clearly, nothing lost.
            self.assertIn("while backups are writing", json.dumps(doc["errors"]))
        self.env.verify_all(check=0)
        self.assertEqual(T.db_digest(self.env.restore(big_id)), T.db_digest(big))


if __name__ == "__main__":
    T.main()
