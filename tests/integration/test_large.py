#!/usr/bin/env python3
"""A database over 1 GiB: it crosses SQLite's lock-byte page at offset 1 GiB
(0x40000000), which exists in the file but is never used by SQLite.

Back up, restore, compare with the source by a content checksum (a .dump of 1 GiB
would be slow), PRAGMA integrity_check of the restored file; then an unchanged
second backup must store almost nothing.
"""

import hashlib
import os
import sys
import time
import unittest

import sqlbaktest as T

PAGE_SIZE = 65536
BLOB = 60000            # one row per 64 KiB page, no overflow
TARGET_BYTES = (1 << 30) + (96 << 20)   # ~1.09 GiB


def build(path):
    con = T.connect(path)
    con.execute("PRAGMA page_size=%d" % PAGE_SIZE)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, k INTEGER, b BLOB)")
    con.execute("CREATE INDEX big_k ON big(k)")
    rows = TARGET_BYTES // PAGE_SIZE
    con.execute("BEGIN")
    con.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) "
        "INSERT INTO big(k, b) SELECT (x * 7919) % 100003, "
        "CASE WHEN x % 4 = 0 THEN zeroblob(?) ELSE randomblob(?) END FROM c",
        (rows, BLOB, BLOB))
    con.execute("COMMIT")
    # Switch to the journal mode the test wants (WAL) once built.
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.close()


def content_checksum(path):
    con = T.sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        count, total = con.execute("SELECT count(*), sum(length(b)) FROM big").fetchone()
        h = hashlib.sha256()
        for rid, k, b in con.execute("SELECT id, k, b FROM big ORDER BY id"):
            h.update(b"%d:%d:" % (rid, k))
            h.update(b)
        return count, total, h.hexdigest()
    finally:
        con.close()


class LargeDatabase(T.EnvTestCase):

    def test_over_one_gib(self):
        env = self.env
        db = env.add_database("large")
        t0 = time.monotonic()
        build(db)
        size = os.path.getsize(db)
        self.assertGreater(size, (1 << 30) + PAGE_SIZE, "the database must cross the lock-byte page")
        src_sum = content_checksum(db)
        src_schema = T.schema(db)
        sys.stderr.write("built %d bytes in %.1f s\n" % (size, time.monotonic() - t0))

        b1 = env.backup_one("large")
        self.assertEqual(int(b1["page_size"]), PAGE_SIZE)
        self.assertEqual(int(b1["page_count"]), int(T.pragma(db, "page_count")))
        out = env.restore(b1["id"])
        self.assertEqual(os.path.getsize(out), size)
        self.assertEqual(T.integrity_check(out), "ok")
        self.assertEqual(content_checksum(out), src_sum)
        self.assertEqual(T.schema(out), src_schema)
        self.assertEqual(T.pragma(out, "journal_mode"), "wal")
        self.assertEqual(T.pragma(out, "page_size"), str(PAGE_SIZE))
        os.unlink(out)

        # Unchanged: the second backup is a full restore point that stores ~nothing.
        b2 = env.backup_one("large")
        self.assertLessEqual(int(b2["stored_bytes"]), int(b1["stored_bytes"]) // 100, (b1, b2))
        self.assertLessEqual(int(b2["new_pages"]), 2, b2)
        env.ctl("verify", b2["id"], check=0)
        sys.stderr.write("total %.1f s\n" % (time.monotonic() - t0))


if __name__ == "__main__":
    T.main()
