#!/usr/bin/env python3
"""The S3 target against s3rver, through `sqlbakctl --offline`.

s3rver is the server; FaultProxy (s3_peer.py) sits in front of it, checks every
request's SigV4 signature as AWS would, counts requests and bytes, and injects
faults; awscli is the independent client that checks where objects are and
what they hold. Exits 77 (skipped) when s3rver is not installed.
"""

import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import s3_peer as S3
import sqlbaktest as T

BUCKET = "sqlbak-it"
PREFIX = "host1/sqlbak/"
ROW_BYTES = 3000  # one row per 4 KiB page: changing N rows changes about N pages


def make_db(path, rows, row_bytes=ROW_BYTES):
    con = T.connect(path)
    try:
        con.execute("PRAGMA page_size=4096")
        con.execute("PRAGMA journal_mode=wal")
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, b BLOB)")
        con.execute("CREATE TABLE notes(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
        con.execute("BEGIN")
        con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
                    "INSERT INTO t(n, b) SELECT x, randomblob(?) FROM c", (rows, row_bytes))
        con.executemany("INSERT INTO notes VALUES (?, ?)", [("k%04d" % i, "note %d" % i) for i in range(200)])
        con.execute("COMMIT")
    finally:
        con.close()
    return path


def change_rows(path, ids, row_bytes=ROW_BYTES):
    con = T.connect(path)
    try:
        con.execute("BEGIN")
        con.executemany("UPDATE t SET b = randomblob(?) WHERE id = ?", [(row_bytes, i) for i in ids])
        con.execute("COMMIT")
    finally:
        con.close()


def page_count(path):
    return int(T.pragma(path, "page_count"))


class S3Env:
    """A directory with credentials and a config naming a local target and an S3
    target 'offsite' (at ENDPOINT), for the databases in self.databases."""

    def __init__(self, root, endpoint, bucket=BUCKET, prefix=PREFIX, targets=("local", "offsite"),
                 key_id=S3.ACCESS_KEY_ID, extra_s3=None):
        self.root = root
        self.config = os.path.join(root, "config.yaml")
        self.state = os.path.join(root, "state")
        self.repo = os.path.join(root, "repo")
        self.out = os.path.join(root, "out")
        os.makedirs(self.out, exist_ok=True)
        self.key_id_file = os.path.join(root, "s3.key-id")
        self.secret_file = os.path.join(root, "s3.secret")
        with open(self.key_id_file, "w") as f:
            f.write(key_id + "\n")
        with open(self.secret_file, "w") as f:
            f.write(S3.SECRET_ACCESS_KEY + "\n")
        os.chmod(self.secret_file, 0o600)
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.targets = list(targets)
        self.extra_s3 = dict(extra_s3 or {})
        self.defaults = {}  # more keys under defaults: (raw YAML values)
        self.databases = {}
        self.procs = []

    def write(self):
        s3 = {"type": "s3", "endpoint": self.endpoint, "region": S3.REGION, "bucket": self.bucket,
              "prefix": self.prefix, "access_key_id_file": self.key_id_file,
              "secret_access_key_file": self.secret_file}
        s3.update(self.extra_s3)
        lines = ["socket: %s" % json.dumps(os.path.join(self.root, "control.sock")),
                 "state_dir: %s" % json.dumps(self.state),
                 "defaults:",
                 "  targets: [%s]" % ", ".join(self.targets)] + [
                 "  %s: %s" % kv for kv in self.defaults.items()] + [
                 "targets:"]
        if "local" in self.targets:
            os.makedirs(self.repo, exist_ok=True)
            lines.append("  local: {type: local, path: %s}" % json.dumps(self.repo))
        lines.append("  offsite: {%s}" % ", ".join("%s: %s" % (k, json.dumps(v)) for k, v in s3.items()))
        lines.append("databases:" if self.databases else "databases: []")
        for name, path in self.databases.items():
            lines += ["  - name: %s" % name, "    path: %s" % json.dumps(path)]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def ctl(self, *args, check=None, json_out=False, timeout=None, env=None):
        a = ["-c", self.config, "--offline"] + (["--json"] if json_out else []) + [str(x) for x in args]
        rc, out, err = T.run_ctl(a, check=None, timeout=timeout, env=env)
        T.assert_no_crash(rc, out, err, [T.SQLBAKCTL] + a)
        if check is not None and rc != check:
            raise AssertionError("expected exit %s\n%s" % (check, T.describe([T.SQLBAKCTL] + a, rc, out, err)))
        return rc, out, err

    def ctl_json(self, *args, check=0):
        rc, out, err = self.ctl(*args, check=check, json_out=True)
        try:
            return json.loads(out), err
        except ValueError:
            raise AssertionError("not JSON:\n%s\n%s" % (out, err))

    def spawn(self, args, **kw):
        """Popen in its own session, killed at cleanup() (T.DaemonProcess starts sqlbakd with it)."""
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen([str(a) for a in args], **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        self.procs = []

    def backup(self, *dbs):
        doc, err = self.ctl_json("backup", *dbs)
        if doc.get("errors"):
            raise AssertionError("backup reported errors: %r\n%s" % (doc["errors"], err))
        return doc["backups"], err


class S3TestCase(unittest.TestCase):

    def setUp(self):
        T.require_binaries()
        self.root = tempfile.mkdtemp(prefix="sqlbak-s3-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.server = S3.S3Server(os.path.join(self.root, "server"), buckets=(BUCKET, "other-bucket"))
        self.addCleanup(self.server.stop)
        self.proxy = S3.FaultProxy(self.server.port, BUCKET, verify_sigv4=True)
        self.addCleanup(self.proxy.stop)
        self.host = os.path.join(self.root, "host")
        os.makedirs(self.host)
        self.env = S3Env(self.host, self.proxy.endpoint)
        self.dbdir = os.path.join(self.host, "db")
        os.makedirs(self.dbdir)

    def tearDown(self):
        # Every request sqlbak sent must have been signed as AWS checks it.
        self.assertEqual(self.proxy.bad_signatures, [], "requests signed wrongly")

    def add_db(self, name, rows, row_bytes=ROW_BYTES):
        path = make_db(os.path.join(self.dbdir, name + ".db"), rows, row_bytes)
        self.env.databases[name] = path
        self.env.write()
        return path

    def fresh_host(self, targets=("offsite",), endpoint=None, prefix=PREFIX):
        """A new directory holding nothing but a config and the credentials."""
        d = tempfile.mkdtemp(prefix="sqlbak-s3-fresh-", dir=self.root)
        e = S3Env(d, endpoint or self.proxy.endpoint, targets=targets, prefix=prefix)
        e.databases = {n: os.path.join(d, "absent", n + ".db") for n in self.env.databases}
        e.write()
        return e

    def assert_same(self, source_dump, restored):
        self.assertEqual(T.integrity_check(restored), "ok")
        got = T.dump(restored)
        if got != source_dump:
            self.fail("restored %s differs from the source (%d vs %d bytes of .dump)" %
                      (restored, len(got), len(source_dump)))

    def s3_objects(self, prefix=PREFIX):
        return self.server.objects(BUCKET, prefix)

    def assertClearError(self, rc, err, names=(), words=()):
        self.assertEqual(rc, 1, err)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertTrue(lines, "no error on stderr")
        for n in names:
            self.assertIn(n, err)
        if words:
            self.assertTrue(any(w.lower() in err.lower() for w in words), "none of %r in %r" % (words, err))
        self.assertNotIn(S3.SECRET_ACCESS_KEY + "\n", err)


class RoundTrip(S3TestCase):

    def test_incremental_backup_and_fresh_host_restore(self):
        """Backup to a local and an S3 target; a 1 % change uploads about 1 %;
        list/show/verify on S3; restore on a host with nothing but the config."""
        self.env.extra_s3 = {"storage_class": "STANDARD_IA", "sse": "AES256"}
        self.env.write()
        src = self.add_db("shop", rows=3000)
        pages = page_count(src)
        dump1 = T.dump(src)

        self.proxy.reset_counts()
        first, _ = self.env.backup()
        self.assertEqual(sorted(b["target"] for b in first), ["local", "offsite"])
        full_up = self.proxy.bytes_in
        full_counts = dict(self.proxy.counts)
        objects1 = self.s3_objects()
        full_stored = sum(objects1.values())
        id1 = [b["id"] for b in first if b["target"] == "offsite"][0]

        # Where docs/S3.md says, as awscli sees them.
        if S3.aws_path():
            listed = S3.aws_ls(self.server.endpoint, BUCKET, PREFIX)
            self.assertEqual(listed, {k[len(PREFIX):]: v for k, v in objects1.items()})
            keys = sorted(listed)
            self.assertIn("config", keys)
            self.assertIn("manifests/shop/%s.json" % id1, keys)
            packs = [k for k in keys if k.startswith("packs/")]
            self.assertTrue(packs)
            for k in packs + [k for k in keys if k.startswith("index/")]:
                name = k.split("/")[-1]
                self.assertEqual(k.split("/")[1], name[:2], k)
            self.assertFalse([k for k in keys if k.startswith("locks/")], "a lock was left behind")
            # awscli downloads exactly what sqlbak uploaded: a pack's name is its SHA-256.
            local_copy = os.path.join(self.root, "pack-by-awscli")
            S3.aws(self.server.endpoint, "s3", "cp", "s3://%s/%s%s" % (BUCKET, PREFIX, packs[0]), local_copy)
            self.assertEqual(hashlib.sha256(T.file_bytes(local_copy)).hexdigest(), packs[0].split("/")[-1])
            head = json.loads(S3.aws(self.server.endpoint, "s3api", "head-object", "--bucket", BUCKET,
                                     "--key", PREFIX + "config"))
            self.assertEqual(head.get("StorageClass"), "STANDARD_IA")
        creates = self.proxy.seen(lambda r: r.method == "PUT" and r.key.startswith(PREFIX + "manifests/"))
        self.assertTrue(creates)
        for r in creates:
            self.assertEqual(r.headers.get("x-amz-storage-class"), "STANDARD_IA")
            self.assertEqual(r.headers.get("x-amz-server-side-encryption"), "AES256")
            self.assertIn("content-md5", r.headers)

        # About 1 % of the pages change.
        rng = random.Random(T.seed())
        changed = max(1, pages // 100)
        change_rows(src, rng.sample(range(1, 3001), changed))
        dump2 = T.dump(src)
        time.sleep(1.1)  # distinct creation seconds for --at
        self.proxy.reset_counts()
        second, _ = self.env.backup()
        incr_up = self.proxy.bytes_in
        incr_counts = dict(self.proxy.counts)
        objects2 = self.s3_objects()
        new_objects = {k: v for k, v in objects2.items() if k not in objects1}
        incr_stored = sum(new_objects.values())
        id2 = [b["id"] for b in second if b["target"] == "offsite"][0]
        sys.stderr.write(
            "S3 figures: database %d pages (%d bytes); %d pages changed\n"
            "  full backup:        %d bytes uploaded, %d bytes stored, requests %r\n"
            "  incremental backup: %d bytes uploaded (%.2f %%), %d bytes stored in %d new objects, "
            "requests %r\n" % (
                pages, os.path.getsize(src), changed, full_up, full_stored, full_counts,
                incr_up, 100.0 * incr_up / full_up, incr_stored, len(new_objects), incr_counts))
        self.assertLessEqual(incr_up, full_up // 10, "the incremental backup uploaded too much")
        self.assertLessEqual(incr_stored, full_stored // 10, "the incremental backup stored too much")

        # list / show / verify against the S3 target.
        doc, _ = self.env.ctl_json("list", "--target", "offsite")
        self.assertEqual([b["id"] for b in doc["backups"]], [id2, id1])
        doc, _ = self.env.ctl_json("list")
        self.assertEqual(len(doc["backups"]), 4)
        doc, _ = self.env.ctl_json("show", id2, "--target", "offsite")
        self.assertEqual(doc["manifest"]["id"], id2)
        self.assertEqual(doc["target"], "offsite")
        doc, _ = self.env.ctl_json("verify", "--all", "--target", "offsite")
        self.assertEqual(len(doc["results"]), 2)
        self.assertTrue(all(r["ok"] for r in doc["results"]), doc)

        # The fresh host: the config and the credentials, nothing else.
        fresh = self.fresh_host()
        self.assertFalse(os.path.exists(fresh.state))
        to1 = os.path.join(fresh.out, "shop-1.db")
        fresh.ctl("restore", id1, "--to", to1, check=0)
        self.assert_same(dump1, to1)
        created2 = [b for b in second if b["target"] == "offsite"][0]["created"]
        to2 = os.path.join(fresh.out, "shop-at.db")
        fresh.ctl("restore", "shop", "--at", created2, "--to", to2, check=0)
        self.assert_same(dump2, to2)
        fresh.ctl("verify", "--all", check=0)
        doc, _ = fresh.ctl_json("list")
        self.assertEqual([b["id"] for b in doc["backups"]], [id2, id1])

        # The same config on the fresh host (its local target directory is
        # absent): --target offsite reads S3 alone.
        same = self.fresh_host(targets=("local", "offsite"))
        shutil.rmtree(same.repo)
        to3 = os.path.join(same.out, "shop-3.db")
        same.ctl("restore", id2, "--to", to3, "--target", "offsite", check=0)
        self.assert_same(dump2, to3)

        if S3.aws_path():
            # What awscli copies out is a repository any target reads...
            copy = os.path.join(self.root, "copied-by-awscli")
            S3.aws(self.server.endpoint, "s3", "cp", "--recursive", "s3://%s/%s" % (BUCKET, PREFIX), copy)
            local = S3Env(tempfile.mkdtemp(dir=self.root), self.proxy.endpoint, targets=("local",))
            local.repo = copy
            local.write()
            to4 = os.path.join(local.out, "from-awscli-copy.db")
            local.ctl("restore", id2, "--to", to4, check=0)
            self.assert_same(dump2, to4)
            # ... and what awscli puts in place, sqlbak restores from.
            S3.aws(self.server.endpoint, "s3", "cp", "--recursive", self.env.repo,
                   "s3://%s/elsewhere/" % BUCKET)
            moved = self.fresh_host(prefix="elsewhere/")
            id_local = [b["id"] for b in second if b["target"] == "local"][0]
            to5 = os.path.join(moved.out, "from-awscli-upload.db")
            moved.ctl("restore", id_local, "--to", to5, check=0)
            self.assert_same(dump2, to5)

    def test_large_pack_goes_up_in_parts(self):
        """~40 MiB of random data: packs (over 10 MiB) go up as parallel multipart uploads."""
        src = self.add_db("big", rows=40 * 1024 * 1024 // 4000, row_bytes=4000)
        self.env.targets = ["offsite"]
        self.env.write()
        dump = T.dump(src)
        self.proxy.reset_counts()
        backups, _ = self.env.backup()
        starts = self.proxy.seen(lambda r: r.method == "POST" and "uploads" in r.query)
        parts = self.proxy.seen(lambda r: r.method == "PUT" and "partNumber=" in r.query)
        completes = self.proxy.seen(lambda r: r.method == "POST" and "uploadId=" in r.query)
        self.assertGreaterEqual(len(starts), 1, "no multipart upload")
        self.assertEqual(len(completes), len(starts))
        self.assertGreaterEqual(len(parts), 2 * len(starts))
        for p in parts:
            self.assertIn("content-md5", p.headers)
        big = {k: v for k, v in self.s3_objects().items() if v > 10 * 1024 * 1024}
        self.assertEqual(len(big), len(starts), "objects over 10 MiB on the server")
        for key in big:
            # s3rver assembled the parts in order: the pack's name is its SHA-256.
            with open(os.path.join(self.server.dir, BUCKET, key + "._S3rver_object"), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), key.split("/")[-1])
        backup_counts, backup_bytes = dict(self.proxy.counts), self.proxy.bytes_in
        self.proxy.reset_counts()
        fresh = self.fresh_host()
        to = os.path.join(fresh.out, "big.db")
        fresh.ctl("restore", backups[0]["id"], "--to", to, check=0)
        self.assert_same(dump, to)
        sys.stderr.write(
            "S3 multipart: database %d bytes; backup uploaded %d bytes in %d multipart uploads (%d parts), "
            "requests %r; restore downloaded %d bytes, requests %r\n" % (
                os.path.getsize(src), backup_bytes, len(starts), len(parts), backup_counts,
                self.proxy.bytes_out, dict(self.proxy.counts)))


class Rotation(S3TestCase):

    def test_rotate_on_s3_keeps_exactly_the_kept_backups(self):
        """Rotate removes manifests, then prune removes what no backup needs with
        batch deletes; verify --all passes afterwards."""
        src = self.add_db("shop", rows=600)
        self.env.targets = ["offsite"]
        self.env.defaults["retention"] = ("{keep_last: 2, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, "
                                          "keep_monthly: 0, keep_yearly: 0}")
        self.env.write()
        ids = []
        for i in range(4):
            if i:  # every row: the previous backup's new pack becomes garbage
                change_rows(src, range(1, 601))
            ids.append(self.env.backup("shop")[0][0]["id"])
            time.sleep(1.1)
        dump = T.dump(src)
        before = self.s3_objects()
        self.proxy.reset_counts()
        self.env.ctl("rotate", "shop", check=0)
        doc, _ = self.env.ctl_json("list", "--target", "offsite")
        self.assertEqual([b["id"] for b in doc["backups"]], [ids[3], ids[2]])
        batch_deletes = self.proxy.seen(lambda r: r.method == "POST" and "delete=" in r.query)
        self.assertTrue(batch_deletes, "prune did not use DeleteObjects")
        after = self.s3_objects()
        self.assertLess(sum(after.values()), sum(before.values()))
        self.assertFalse([k for k in after if k.startswith(PREFIX + "locks/")])
        # Exactly what the kept manifests name is left.
        needed = set()
        for i in ids[2:]:
            m, _ = self.env.ctl_json("show", i)
            needed |= {p["id"] for p in m["manifest"]["packs"]}
        packs = {k.split("/")[-1] for k in after if k.startswith(PREFIX + "packs/")}
        indexes = {k.split("/")[-1] for k in after if k.startswith(PREFIX + "index/")}
        self.assertEqual(packs, needed)
        self.assertEqual(indexes, needed)
        doc, _ = self.env.ctl_json("verify", "--all")
        self.assertTrue(doc["results"] and all(r["ok"] for r in doc["results"]), doc)
        fresh = self.fresh_host()
        to = os.path.join(fresh.out, "shop.db")
        fresh.ctl("restore", ids[3], "--to", to, check=0)
        self.assert_same(dump, to)


class Faults(S3TestCase):

    def test_transient_faults_during_backup_are_retried(self):
        """503s, a 429, a 500 and dropped connections: the backup still succeeds."""
        src = self.add_db("shop", rows=500)
        self.env.targets = ["offsite"]
        self.env.write()
        dump = T.dump(src)
        first_put = {}

        def plan(r):
            if r.n <= 3:
                return S3.error(503, "SlowDown", "Please reduce your request rate.")
            if r.n in (5, 9):
                return S3.DROP
            if r.n == 7:
                return S3.error(429, "TooManyRequests")
            if r.method == "PUT" and "/packs/" in r.path and not first_put:
                first_put[r.key] = r.n
                return S3.error(500, "InternalError", "We encountered an internal error.")
            return S3.PASS
        self.proxy.plan = plan
        backups, _ = self.env.backup()
        injected = self.proxy.seen(lambda r: r.action != "pass")
        self.assertGreaterEqual(len(injected), 7, [(r.n, r.action) for r in injected])
        self.assertTrue(first_put)
        # The pack refused with a 500 was sent again.
        self.assertEqual(len(self.proxy.seen(lambda r: r.method == "PUT" and r.key in first_put)), 2)
        self.proxy.plan = lambda r: S3.PASS
        fresh = self.fresh_host()
        to = os.path.join(fresh.out, "shop.db")
        fresh.ctl("restore", backups[0]["id"], "--to", to, check=0)
        self.assert_same(dump, to)

    def test_restore_resumes_after_a_dropped_connection(self):
        """The proxy cuts the first download of each pack in the middle: restore
        resumes it from where it stopped and the result is identical."""
        src = self.add_db("shop", rows=2000)
        self.env.targets = ["offsite"]
        self.env.write()
        dump = T.dump(src)
        backups, _ = self.env.backup()
        cut_keys = set()

        def plan(r):
            if r.method == "GET" and "/packs/" in r.path and r.key not in cut_keys:
                cut_keys.add(r.key)
                return S3.cut(0.5)
            return S3.PASS
        self.proxy.plan = plan
        fresh = self.fresh_host()
        to = os.path.join(fresh.out, "shop.db")
        fresh.ctl("restore", backups[0]["id"], "--to", to, check=0)
        self.assert_same(dump, to)
        self.assertTrue(cut_keys)
        for key in cut_keys:
            resumed = self.proxy.seen(lambda r: r.key == key and "range" in r.headers)
            self.assertTrue(resumed, "download of %s was not resumed with a Range request" % key)
            self.assertFalse(resumed[0].headers["range"].startswith("bytes=0-"))
            self.assertIn("if-match", resumed[0].headers)

    def test_failed_multipart_upload_is_aborted_and_nothing_is_listed(self):
        src = self.add_db("big", rows=18 * 1024 * 1024 // 4000, row_bytes=4000)
        self.assertGreater(os.path.getsize(src), 17 * 1024 * 1024)
        self.env.targets = ["offsite"]
        self.env.write()

        def plan(r):
            if r.method == "PUT" and "partNumber=2" in r.query:
                return S3.error(403, "AccessDenied", "Access Denied")
            return S3.PASS
        self.proxy.plan = plan
        rc, out, err = self.env.ctl("backup", "big")
        self.assertClearError(rc, err, names=["offsite", "part 2"], words=["HTTP 403", "credentials"])
        aborts = self.proxy.seen(lambda r: r.method == "DELETE" and "uploadId=" in r.query)
        self.assertTrue(aborts, "the multipart upload was not aborted")
        self.proxy.plan = lambda r: S3.PASS
        doc, _ = self.env.ctl_json("list", "--target", "offsite")
        self.assertEqual(doc["backups"], [])
        self.assertFalse([k for k in self.s3_objects() if "/manifests/" in k])

    def test_permanent_503_fails_naming_target_object_and_status(self):
        self.add_db("shop", rows=50)
        self.env.targets = ["offsite"]
        self.env.write()
        self.proxy.plan = lambda r: S3.error(503, "SlowDown", "Please reduce your request rate.")
        rc, out, err = self.env.ctl("backup", "shop", env=T.fast_clock_env(10))
        self.assertClearError(rc, err, names=["offsite", "HTTP 503 after 6 attempts",
                                              "SlowDown: Please reduce your request rate."])
        self.assertEqual(len(self.proxy.seen()), 6)

    def test_server_down(self):
        self.add_db("shop", rows=50)
        port = S3.free_port()
        self.env.endpoint = "http://127.0.0.1:%d" % port
        self.env.write()
        # Each request is tried six times with backoff between: a fast clock
        # shortens the waits, not the attempts.
        fast = T.fast_clock_env(10)
        rc, out, err = self.env.ctl("backup", "shop", env=fast)
        self.assertClearError(rc, err, names=["offsite", "127.0.0.1:%d" % port], words=["cannot reach"])
        rc, out, err = self.env.ctl("list", "--target", "offsite", env=fast)
        self.assertClearError(rc, err, names=["offsite"], words=["cannot reach"])

    def test_wrong_bucket_and_wrong_credentials(self):
        self.add_db("shop", rows=50)
        self.env.bucket = "no-such-bucket"
        self.env.write()
        rc, out, err = self.env.ctl("backup", "shop")
        self.assertClearError(rc, err, names=["offsite", "no-such-bucket"], words=["does not exist"])
        rc, out, err = self.env.ctl("list")
        self.assertClearError(rc, err, names=["no-such-bucket"], words=["does not exist"])

        self.env.bucket = BUCKET
        with open(self.env.key_id_file, "w") as f:
            f.write("WRONGKEY\n")
        rc, out, err = self.env.ctl("list", "--target", "offsite")
        self.assertClearError(rc, err, names=["offsite", "HTTP 403"], words=["credentials"])
        self.assertNotIn("WRONGKEY", err)


def method_counts(requests):
    """What the server was asked, in TransferCounters' terms (lib/object_store.h):
    PUT and POST are puts (DeleteObjects, a POST, is a delete), GET and HEAD gets,
    ListObjectsV2 lists, DELETE deletes."""
    out = {"put": 0, "get": 0, "list": 0, "delete": 0}
    for r in requests:
        if r.kind == "multipart":  # start, part, complete: puts; abort: a DELETE
            out["delete" if r.method == "DELETE" else "put"] += 1
        else:
            out[r.kind] += 1  # s3_peer.classify: a POST ?delete is a "delete"
    return out


def job_counts(job):
    return {k: job[k + "_requests"] for k in ("put", "get", "list", "delete")}


class RequestCounts(S3TestCase):
    """The catalog charges each job with exactly the requests (by method) and
    bytes the server saw, and `report` adds them up per target."""

    def jobs(self, state=None):
        con = sqlite3.connect(os.path.join(state or self.env.state, "catalog.db"), timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM jobs ORDER BY id")]
        finally:
            con.close()

    def new_jobs(self, seen):
        return [j for j in self.jobs() if j["id"] > seen]

    def last_id(self):
        jobs = self.jobs() if os.path.exists(os.path.join(self.env.state, "catalog.db")) else []
        return jobs[-1]["id"] if jobs else 0

    def assert_charged(self, jobs, what):
        """JOBS together made exactly the requests and moved exactly the bytes the proxy saw."""
        seen = self.proxy.seen()
        want = method_counts(seen)
        got = {k: sum(job_counts(j)[k] for j in jobs) for k in want}
        info = "%s: catalog %r, proxy %r (%d requests: %s)" % (
            what, got, want, len(seen), ", ".join("%s %s" % (r.method, r.raw_path) for r in seen[:80]))
        self.assertEqual(got, want, info)
        self.assertEqual(sum(j["bytes_uploaded"] for j in jobs), self.proxy.bytes_in, info)
        self.assertEqual(sum(j["bytes_downloaded"] for j in jobs), self.proxy.bytes_out, info)
        self.assertTrue(all(j["target"] == "offsite" for j in jobs), jobs)
        return got

    def test_backup_restore_rotate_prune_are_charged_exactly(self):
        src = self.add_db("shop", rows=1500)
        self.env.targets = ["offsite"]
        self.env.defaults["retention"] = ("{keep_last: 1, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, "
                                          "keep_monthly: 0, keep_yearly: 0}")
        self.env.write()

        # A first backup: creates the repository, takes both locks, uploads everything.
        self.proxy.reset_counts()
        first = self.env.backup("shop")[0][0]
        [job] = self.jobs()
        self.assertEqual((job["kind"], job["result"]), ("backup", "success"))
        full = self.assert_charged([job], "first backup")
        self.assertGreaterEqual(full["put"], 4)     # config, a pack, its index, the manifest, 2 locks
        self.assertGreaterEqual(full["delete"], 2)  # the locks
        self.assertGreater(job["bytes_uploaded"], job["stored_bytes"])

        # An incremental one.
        change_rows(src, range(1, 1501))
        time.sleep(1.1)
        seen = self.last_id()
        self.proxy.reset_counts()
        self.env.backup("shop")
        self.assert_charged(self.new_jobs(seen), "second backup")

        # A restore on this host: finding the backup is part of its cost.
        seen = self.last_id()
        self.proxy.reset_counts()
        to = os.path.join(self.env.out, "shop-1.db")
        self.env.ctl("restore", first["id"], "--to", to, check=0)
        [job] = self.new_jobs(seen)
        self.assertEqual(job["kind"], "restore")
        counts = self.assert_charged([job], "restore")
        self.assertEqual((counts["put"], counts["delete"]), (0, 0))
        self.assertGreater(job["bytes_downloaded"], 0)

        # Rotate (one manifest removed: 1 DELETE) and prune (DeleteObjects batches).
        seen = self.last_id()
        self.proxy.reset_counts()
        self.env.ctl("rotate", "shop", check=0)
        jobs = self.new_jobs(seen)
        self.assertEqual([j["kind"] for j in jobs], ["rotate", "prune"])
        self.assert_charged(jobs, "rotate + prune")
        rotate, prune = jobs
        manifest_deletes = self.proxy.seen(lambda r: r.method == "DELETE" and "/manifests/" in r.path)
        self.assertEqual(len(manifest_deletes), 1)
        batches = self.proxy.seen(lambda r: r.method == "POST" and "delete" in r.query)
        self.assertTrue(batches, "prune did not use DeleteObjects")
        # Each job its own share: the rotation's manifest DELETE, prune's batches.
        self.assertGreaterEqual(rotate["delete_requests"], 1)
        self.assertGreaterEqual(prune["delete_requests"], len(batches))
        self.assertEqual(rotate["delete_requests"] + prune["delete_requests"],
                         method_counts(self.proxy.seen())["delete"])

        # The report: per target, the sums of the catalog rows.
        report, _ = self.env.ctl_json("report", "--days", "1")
        rows = self.jobs()
        [offsite] = report["targets"]
        self.assertEqual(offsite["name"], "offsite")
        self.assertEqual(offsite["jobs"], len(rows))
        self.assertEqual(offsite["requests"], {k: sum(job_counts(j)[k] for j in rows)
                                               for k in ("put", "get", "list", "delete")})
        self.assertEqual(offsite["uploaded_bytes"], sum(j["bytes_uploaded"] for j in rows))
        self.assertEqual(offsite["downloaded_bytes"], sum(j["bytes_downloaded"] for j in rows))
        rc, out, err = self.env.ctl("report", "--days", "1", check=0)
        r = offsite["requests"]
        self.assertIn("target offsite: {:,} PUT, {:,} GET, {:,} LIST, {:,} DELETE, ".format(
            r["put"], r["get"], r["list"], r["delete"]), out)

    def test_concurrent_daemon_backups_each_pay_their_own(self):
        """Two databases backed up at once by sqlbakd to one S3 target: each job is
        charged with its own requests (a job has stores of its own), so together
        they account for exactly what the server saw."""
        self.add_db("shop", rows=1200)
        self.add_db("blog", rows=1200)
        self.env.targets = ["offsite"]
        self.env.write()
        self.addCleanup(self.env.cleanup)
        d = T.start_daemon(self.env)
        self.addCleanup(d.stop)
        # The start-up health check (after 5 s) reads the target too: let it pass.
        deadline = time.time() + 30
        time.sleep(5)
        last = -1
        while time.time() < deadline:
            n = len(self.proxy.seen())
            if n == last and n > 0:
                break
            last = n
            time.sleep(1)
        self.proxy.reset_counts()
        d.ctl("backup", "shop", "blog", "--wait", check=0)
        # Before the health check that follows a job (2 s later).
        seen, bytes_in, bytes_out = self.proxy.seen(), self.proxy.bytes_in, self.proxy.bytes_out
        jobs = self.jobs()
        self.assertEqual(sorted((j["database"], j["result"]) for j in jobs),
                         [("blog", "success"), ("shop", "success")], jobs)
        want = method_counts(seen)
        got = {k: sum(job_counts(j)[k] for j in jobs) for k in want}
        self.assertEqual(got, want, jobs)
        self.assertEqual(sum(j["bytes_uploaded"] for j in jobs), bytes_in)
        self.assertEqual(sum(j["bytes_downloaded"] for j in jobs), bytes_out)
        for j in jobs:
            # Its own locks (database and repository) taken and released, its own objects.
            self.assertGreaterEqual(j["delete_requests"], 2, j)
            self.assertGreaterEqual(j["put_requests"], 5, j)
            self.assertLess(j["put_requests"], got["put"], j)


class Locks(S3TestCase):

    def put_lock(self, name, host, pid, expires_in_s, mode="exclusive"):
        """Puts the lock object of a holder on HOST (docs/S3.md, "Locks"); returns its key."""
        now = int(time.time() * 1000)
        token = "%032x" % random.getrandbits(128)
        key = "%slocks/%s/%s.lock" % (PREFIX, name, token)
        body = json.dumps({"host": host, "pid": pid, "token": token, "mode": mode,
                           "since": T.utc_iso(now / 1000), "since_unix_ms": now,
                           "expires": T.utc_iso(now / 1000 + expires_in_s),
                           "expires_unix_ms": now + expires_in_s * 1000}).encode()
        # s3rver takes unsigned requests as anonymous: no need to sign here.
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            c.request("PUT", "/%s/%s" % (BUCKET, key), body=body,
                      headers={"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            c.close()
        return key

    def lock_objects(self):
        return sorted(k for k in self.s3_objects() if k.startswith(PREFIX + "locks/"))

    def test_a_live_lock_refuses_and_an_expired_one_is_taken_over(self):
        self.add_db("shop", rows=50)
        self.env.targets = ["offsite"]
        self.env.write()
        live = self.put_lock("db-shop", "otherhost", 999999, 600)
        rc, out, err = self.env.ctl("backup", "shop")
        self.assertClearError(rc, err, names=["offsite", "otherhost", "999999"], words=["locked"])
        self.assertEqual(self.lock_objects(), [live], "a refused backup left a lock object")

        self.s3_delete(live)
        dead = self.put_lock("db-shop", "deadhost", 4242, -5)
        backups, err = self.env.backup("shop")
        # A warning, through the workspace (sqlbakctl's prefix), once.
        self.assertIn("sqlbakctl: warning: took over the lock 'db-shop'", err)
        self.assertEqual(err.count("took over the lock"), 1, err)
        self.assertIn("deadhost", err)
        self.assertEqual(self.lock_objects(), [], "locks not released")
        self.assertNotIn(dead, self.s3_objects())

    def test_prune_lock_keeps_backups_out(self):
        """A backup holds the repository lock shared; an exclusive (prune) holder
        refuses it, naming the holder; other shared holders do not."""
        self.add_db("shop", rows=50)
        self.env.targets = ["offsite"]
        self.env.write()
        other = self.put_lock("repository", "backuphost", 777, 600, mode="shared")
        self.env.backup("shop")
        self.assertEqual(self.lock_objects(), [other])
        self.s3_delete(other)
        self.put_lock("repository", "prunehost", 888, 600, mode="exclusive")
        # The backup waits a minute for the prune before it gives up: a clock that
        # runs thirty times faster makes that minute two seconds.
        rc, out, err = self.env.ctl("backup", "shop", env=T.fast_clock_env(30))
        self.assertClearError(rc, err, names=["offsite", "prunehost", "888"], words=["pruned", "locked"])

    def test_simultaneous_backups_of_one_database_never_overlap(self):
        """Three processes back up one database to S3 at the same moment. Those
        that collide back off and try again; a backup that succeeds held the lock
        alone (its lock record was written after the previous holder's was
        deleted); the others fail naming the holder; no lock object is left."""
        import subprocess
        self.add_db("shop", rows=1500)
        self.env.targets = ["offsite"]
        self.env.write()
        args = [T.SQLBAKCTL, "-c", self.env.config, "--offline", "--json", "backup", "shop"]
        procs = [subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=T.COMMAND_TIMEOUT)
            T.assert_no_crash(p.returncode, out, err, args)
            results.append((p.pid, p.returncode, out, err))
        winners = [pid for pid, rc, _, _ in results if rc == 0]
        for pid, rc, out, err in results:
            if rc != 0:
                self.assertIn("is locked by another process", out + err, (rc, out, err))
        # The interval (in request order) during which each winner held the lock.
        intervals = []
        for pid in winners:
            puts = self.proxy.seen(lambda r: r.method == "PUT" and "/locks/db-shop/" in r.path and
                                   json.loads(r.body)["pid"] == pid)
            self.assertTrue(puts, "no lock record of pid %d" % pid)
            held = puts[-1]
            released = self.proxy.seen(lambda r: r.method == "DELETE" and r.key == held.key and r.n > held.n)
            self.assertTrue(released, "the lock of pid %d was not released" % pid)
            intervals.append((held.n, released[0].n, pid))
        intervals.sort()
        for a, b in zip(intervals, intervals[1:]):
            self.assertLess(a[1], b[0], "two backups held the lock at once: %r" % intervals)
        doc, _ = self.env.ctl_json("list", "--target", "offsite")
        self.assertEqual(len(doc["backups"]), len(winners))
        self.assertEqual(self.lock_objects(), [])
        sys.stderr.write("simultaneous backups: %d of 3 took the lock, one after the other\n" % len(winners))

    def s3_delete(self, key):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            c.request("DELETE", "/%s/%s" % (BUCKET, key))
            c.getresponse().read()
        finally:
            c.close()


def main():
    why = S3.available()
    if why:
        sys.stderr.write("skipped: %s\n" % why)
        sys.exit(77)
    T.main()


if __name__ == "__main__":
    main()
