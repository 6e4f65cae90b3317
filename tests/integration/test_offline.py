#!/usr/bin/env python3
"""Round trips through `sqlbakctl --offline`: backup, list, show, verify, restore.

Every restored database must `.dump` exactly like the source did at backup time,
keep its page size, auto_vacuum mode and journal mode, and pass integrity_check;
sqlbak must leave the source database as it found it.
"""

import os
import time
import unittest

import sqlbaktest as T

MIXED_SCHEMA = """
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INTEGER,
                   note TEXT, data BLOB, UNIQUE(name));
CREATE INDEX items_price ON items(price, qty);
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;
CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, item INTEGER, at TEXT);
CREATE TRIGGER items_ai AFTER INSERT ON items BEGIN
  INSERT INTO audit(item, at) VALUES (new.id, 'insert');
END;
PRAGMA user_version = 42;
PRAGMA application_id = 1936482923;
"""


def fill_mixed(path, rows=1500, big=(5000, 100000)):
    con = T.connect(path)
    try:
        con.execute("BEGIN")
        con.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
            "INSERT INTO items(name, price, qty, note, data) "
            "SELECT 'item-' || x, x * 0.37, x % 97, "
            "CASE WHEN x % 5 = 0 THEN NULL ELSE 'note ''quoted'' ' || hex(randomblob(20)) END, "
            "randomblob(x % 300) FROM c", (rows,))
        # Rows bigger than a page: overflow chains for every page size tested.
        for i, n in enumerate(big):
            con.execute("INSERT INTO items(name, price, qty, note, data) VALUES (?,?,?,?,randomblob(?))",
                        ("big-%d" % i, 1e9 + i, -i, "x" * n, n))
        con.executemany("INSERT INTO kv VALUES (?, ?)",
                        [("key%05d" % i, i if i % 3 else "text %d" % i) for i in range(800)])
        con.execute("COMMIT")
    finally:
        con.close()


class OfflineRoundTrip(T.EnvTestCase):

    def make_mixed(self, name, page_size=4096, journal_mode="delete", auto_vacuum=None, rows=1500):
        path = self.env.add_database(name)
        T.create_db(path, page_size=page_size, journal_mode="delete", auto_vacuum=auto_vacuum,
                    script=MIXED_SCHEMA)
        fill_mixed(path, rows=rows)
        con = T.connect(path)
        self.assertEqual(con.execute("PRAGMA journal_mode=%s" % journal_mode).fetchone()[0],
                         journal_mode)
        con.close()
        return path

    def assert_same_db(self, src_dump, src_props, restored):
        self.assertTrue(os.path.isfile(restored), "restored file %s missing" % restored)
        self.assertEqual(T.integrity_check(restored), "ok", restored)
        got = T.dump(restored)
        if got != src_dump:
            self.fail("restored .dump of %s differs from the source's (%d vs %d bytes)" %
                      (restored, len(got), len(src_dump)))
        for k, v in src_props.items():
            self.assertEqual(T.pragma(restored, k), v, "PRAGMA %s of %s" % (k, restored))

    @staticmethod
    def props(path):
        return {k: T.pragma(path, k) for k in
                ("page_size", "auto_vacuum", "journal_mode", "user_version", "application_id")}

    def test_modes_and_page_sizes(self):
        """WAL and rollback journal x page sizes 1024, 4096, 65536, backed up in one run."""
        cases = {}
        for mode in ("wal", "delete"):
            for ps in (1024, 4096, 65536):
                name = "m_%s_%d" % (mode, ps)
                cases[name] = (self.make_mixed(name, page_size=ps, journal_mode=mode), mode, ps)
        before = {n: (T.dump(p), self.props(p)) for n, (p, _m, _ps) in cases.items()}
        for n, (_p, mode, ps) in cases.items():
            self.assertEqual(before[n][1]["journal_mode"], mode)
            self.assertEqual(before[n][1]["page_size"], str(ps))
        backups = self.env.backup()
        by_db = {b["database"]: b for b in backups}
        self.assertEqual(sorted(by_db), sorted(cases), "one backup per database: %r" % backups)
        for n, (p, mode, ps) in cases.items():
            with self.subTest(db=n):
                b = by_db[n]
                self.assertEqual(b["target"], "local")
                self.assertEqual(int(b["page_size"]), ps)
                self.assertEqual(int(b["page_count"]), int(T.pragma(p, "page_count")))
                self.assertEqual(int(b["database_bytes"]), ps * int(b["page_count"]))
                out = self.env.restore(b["id"])
                self.assert_same_db(before[n][0], before[n][1], out)
                self.assertEqual(T.pragma(out, "journal_mode"), mode)
        self.env.verify_all()

    def test_empty_database(self):
        for mode in ("wal", "delete"):
            with self.subTest(mode=mode):
                p = self.env.add_database("empty_" + mode)
                T.create_db(p, page_size=4096, journal_mode=mode, script="VACUUM;")
                self.assertGreater(os.path.getsize(p), 0)
                d, props = T.dump(p), self.props(p)
                b = self.env.backup_one("empty_" + mode)
                out = self.env.restore(b["id"])
                self.assert_same_db(d, props, out)
                self.assertEqual(T.master_rows(out), [])
        self.env.verify_all()

    def test_freelist_pages(self):
        p = self.env.add_database("free")
        T.create_db(p, page_size=4096, journal_mode="wal", rows=20000, row_bytes=300)
        con = T.connect(p)
        con.execute("DELETE FROM t WHERE id % 3 != 0")
        con.execute("CREATE TABLE gone(x)")
        con.execute("INSERT INTO gone SELECT randomblob(1000) FROM t LIMIT 500")
        con.execute("DROP TABLE gone")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        freelist = int(T.pragma(p, "freelist_count"))
        self.assertGreater(freelist, 100, "test setup: expected free pages")
        d, props = T.dump(p), self.props(p)
        page_count = T.pragma(p, "page_count")
        b = self.env.backup_one("free")
        out = self.env.restore(b["id"])
        self.assert_same_db(d, props, out)
        self.assertEqual(T.pragma(out, "page_count"), page_count)
        self.assertEqual(int(T.pragma(out, "freelist_count")), freelist)
        self.env.verify_all()

    def test_auto_vacuum_incremental(self):
        p = self.make_mixed("av", page_size=4096, journal_mode="delete", auto_vacuum="incremental",
                            rows=3000)
        con = T.connect(p)
        con.execute("DELETE FROM items WHERE id % 2 = 0")
        con.execute("PRAGMA incremental_vacuum(20)")
        con.close()
        self.assertEqual(T.pragma(p, "auto_vacuum"), "2")
        self.assertGreater(int(T.pragma(p, "freelist_count")), 0, "test setup: free pages left")
        d, props = T.dump(p), self.props(p)
        b = self.env.backup_one("av")
        out = self.env.restore(b["id"])
        self.assert_same_db(d, props, out)
        self.assertEqual(T.pragma(out, "auto_vacuum"), "2")
        # The restored file is a working auto_vacuum=incremental database.
        T.run_sqlite3(out, "PRAGMA incremental_vacuum;")
        self.assertEqual(T.integrity_check(out), "ok")
        self.env.verify_all()

    def test_restore_older_backups_by_id_and_time(self):
        p = self.make_mixed("hist", journal_mode="wal", rows=500)
        states = []  # (backup, dump, props, time after backup finished)

        def change(i):
            con = T.connect(p)
            con.execute("BEGIN")
            con.execute("UPDATE items SET qty = qty + ? WHERE id % 7 = ?", (i + 1, i))
            con.execute("INSERT INTO kv VALUES (?, ?)", ("gen%d" % i, i))
            con.execute("COMMIT")
            con.close()

        for i in range(3):
            if i:
                change(i)
            d, props = T.dump(p), self.props(p)
            b = self.env.backup_one("hist")
            t_end = time.time()
            states.append((b, d, props, t_end))
            # Next backup strictly more than one whole second later, so that a
            # second-resolution TIME can fall between two backups.
            while time.time() < int(t_end) + 2.2:
                time.sleep(0.2)
        dumps = [s[1] for s in states]
        self.assertEqual(len(set(dumps)), 3, "test setup: three different states")

        ids = [s[0]["id"] for s in states]
        self.assertEqual(len(set(ids)), 3, "backup ids must be unique: %r" % ids)
        listed = self.env.list_ids("hist")
        self.assertEqual(listed, list(reversed(ids)), "list must be newest first")

        # By id, oldest first, after newer backups exist.
        for b, d, props, _t in states:
            with self.subTest(restore_id=b["id"]):
                self.assert_same_db(d, props, self.env.restore(b["id"]))

        # By time: T(i) = a whole second after backup i finished and before backup i+1.
        for i, (b, d, props, t_end) in enumerate(states):
            at = int(t_end) + 1
            with self.subTest(at_utc=T.utc_iso(at)):
                self.assert_same_db(d, props, self.env.restore_at("hist", T.utc_iso(at)))
            with self.subTest(at_local=T.local_iso(at)):
                self.assert_same_db(d, props, self.env.restore_at("hist", T.local_iso(at)))

        # Before the first backup: nothing to restore, PATH not created.
        first_created = T.parse_time(states[0][0]["created"]).timestamp()
        to = self.env.path("out", "too-early.db")
        rc, out, err = self.env.ctl("restore", "hist", "--at", T.utc_iso(first_created - 3600),
                                    "--to", to)
        self.assertClearError(rc, out, err, 1, names=("hist",))
        self.assertFalse(os.path.exists(to))
        self.env.verify_all()

    def test_source_untouched(self):
        for mode in ("wal", "delete"):
            with self.subTest(mode=mode):
                name = "src_" + mode
                p = self.make_mixed(name, journal_mode=mode, rows=800)
                before = (T.schema(p), T.master_rows(p), self.props(p), T.db_digest(p))
                for _ in range(2):
                    self.env.backup_one(name)
                after = (T.schema(p), T.master_rows(p), self.props(p), T.db_digest(p))
                self.assertEqual(before[0], after[0], ".schema of the source changed")
                self.assertEqual(before[1], after[1], "sqlite_master of the source changed")
                self.assertEqual(before[2], after[2], "PRAGMAs of the source changed")
                self.assertEqual(before[3], after[3], "content of the source changed")
                self.assertEqual(T.pragma(p, "journal_mode"), mode)

    def test_list_show_verify(self):
        a = self.make_mixed("alpha", journal_mode="wal", rows=300)
        self.make_mixed("beta", journal_mode="delete", rows=300)
        ids = []
        # Text output: one line per backup naming database, id and target.
        rc, out, err = self.env.ctl("backup", "alpha", check=0)
        lines = [l for l in out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, out)
        self.assertTrue(lines[0].startswith("alpha: backup "), out)
        self.assertIn(" on local", lines[0])
        m = T.BACKUP_ID_RE.search(lines[0])
        self.assertIsNotNone(m, out)
        ids.append(m.group(0))
        time.sleep(1.1)
        ids.append(self.env.backup_one("beta")["id"])
        time.sleep(1.1)
        con = T.connect(a)
        con.execute("UPDATE items SET qty = -1 WHERE id < 50")
        con.close()
        ids.append(self.env.backup_one("alpha")["id"])

        backups = self.env.list()
        self.assertEqual([b["id"] for b in backups], list(reversed(ids)))
        fields = ("id", "database", "target", "created", "kind", "database_bytes", "stored_bytes",
                  "ratio", "duration_ms", "verified")
        for b in backups:
            for f in fields:
                self.assertIn(f, b, "list --json entry without %r: %r" % (f, b))
            self.assertEqual(b["target"], "local")
            self.assertIn(b["kind"], ("full", "incremental"))
        created = [T.parse_time(b["created"]) for b in backups]
        self.assertEqual(created, sorted(created, reverse=True), "newest first")
        self.assertEqual([b["id"] for b in self.env.list("alpha")], [ids[2], ids[0]])
        self.assertEqual([b["id"] for b in self.env.list("beta")], [ids[1]])
        self.assertEqual([b["id"] for b in self.env.list("--target", "local")], list(reversed(ids)))

        # Plain list names every backup.
        rc, out, err = self.env.ctl("list", check=0)
        for i in ids:
            self.assertIn(i, out)

        for i in ids:
            rc, out, err = self.env.ctl("show", i, check=0)
            self.assertTrue(out.strip(), "show %s printed nothing" % i)
            doc = self.env.ctl_json("show", i)
            self.assertIsInstance(doc, dict)
            self.assertIn(i, T.json.dumps(doc), "show --json %s does not contain its id" % i)

        rc, out, err = self.env.verify_all()
        for i in ids:
            self.assertRegex(out, r"%s \(\S+ on local\): OK" % i)
        doc = self.env.ctl_json("verify", "--all")
        self.assertEqual(sorted(r["id"] for r in doc["results"]), sorted(ids))
        self.assertTrue(all(r["ok"] is True for r in doc["results"]), doc)
        self.env.ctl("verify", ids[0], check=0)
        self.env.ctl("verify", ids[0], ids[1], check=0)
        self.env.ctl("verify", "--db", "alpha", check=0)
        self.env.ctl("verify", "--all", "--target", "local", check=0)
        self.assertTrue(all(b["verified"] not in (None, "", False) for b in self.env.list()),
                        "after verify --all every backup shows a last verification: %r" %
                        self.env.list())

    def test_incremental_stores_only_changed_pages(self):
        p = self.env.add_database("inc")
        # ~30 MiB of incompressible rows, ~9 rows per 4 KiB page.
        rows = 76000
        T.create_db(p, page_size=4096, journal_mode="wal", rows=rows, row_bytes=400)
        pages = int(T.pragma(p, "page_count"))
        self.assertGreater(pages * 4096, 20 << 20)
        digest1 = T.db_digest(p)
        b1 = self.env.backup_one("inc")

        # Change ~1 % of the pages: one row in each of pages/100 evenly spread leaves.
        n_changes = pages // 100
        step = rows // n_changes
        con = T.connect(p)
        con.execute("BEGIN")
        for k in range(n_changes):
            con.execute("UPDATE t SET b = randomblob(400) WHERE id = ?", (1 + k * step,))
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        digest2 = T.db_digest(p)
        self.assertNotEqual(digest1, digest2)
        b2 = self.env.backup_one("inc")

        s1, s2 = int(b1["stored_bytes"]), int(b2["stored_bytes"])
        self.assertGreater(s1, 10 << 20, "first backup stores the whole (incompressible) db: %r" % b1)
        self.assertLessEqual(s2, s1 // 10,
                             "2nd backup after a ~1%% change stored %d bytes, first %d" % (s2, s1))
        self.assertLessEqual(int(b2["new_pages"]), pages // 20, b2)
        self.assertGreaterEqual(int(b2["new_pages"]), n_changes // 2, b2)
        kinds = {b["id"]: b["kind"] for b in self.env.list("inc")}
        self.assertEqual(kinds[b1["id"]], "full")
        self.assertEqual(kinds[b2["id"]], "incremental")
        # Both are full restore points.
        r2 = self.env.restore(b2["id"])
        self.assertEqual(T.db_digest(r2), digest2)
        r1 = self.env.restore(b1["id"])
        self.assertEqual(T.db_digest(r1), digest1)
        self.assertEqual(T.integrity_check(r2), "ok")
        self.env.verify_all()


if __name__ == "__main__":
    T.main()
