#!/usr/bin/env python3
"""Build (or change) a realistic SQLite database for the sqlbak benchmarks.

Build mode (default):

    make_db.py PATH [--size-mib N] [--journal-mode wal|delete|truncate|persist]
               [--page-size 4096] [--seed S] [--force]

  Creates PATH with five tables and their indexes, grown until the file is
  about N MiB (default 1024):

    users        small rows, unique email index, (country, created_at) index
    orders       (user_id, created_at) and (status, created_at) indexes
    order_items  1..4 items per order, (order_id) and (sku) indexes
    events       JSON-ish text payloads, (ts) and (user_id, kind) indexes
    documents    blobs of varied sizes (200 B .. 1 MiB, log-uniform), ~85 %
                 compressible word text, ~15 % random bytes; (user_id), (name)

  While building: synchronous=OFF, no journal, one transaction per batch,
  into PATH.building which is renamed at the end; then the requested journal
  mode (default WAL) is set on the finished file.

Change mode:

    make_db.py PATH --change-percent P [--seed S]

  Modifies about P % of the pages of an existing database, by updates spread
  uniformly over the rows of the big tables (users: balance, orders: status
  (indexed), order_items: quantity/price, events: processed_at, documents:
  the body is rewritten with new content of the same size).  The pages that
  change are counted exactly from the WAL (a non-WAL database is switched to
  WAL for the change and back afterwards); rounds are repeated until at least
  ~P % of the pages changed.  Ends with PRAGMA wal_checkpoint(TRUNCATE), so the
  change is in the main database file (what a file-level backup tool sees).

Both modes print a one-line summary on stdout (--json: a JSON object).
Only the Python standard library is used.
"""

import argparse
import hashlib
import json
import math
import os
import random
import sqlite3
import struct
import sys
import time

MIB = 1024 * 1024

# Share of the database (by bytes) that each table and its indexes should get.
SHARES = {
    "users": 0.06,
    "orders": 0.16,
    "order_items": 0.16,
    "events": 0.30,
    "documents": 0.32,
}
# First guess of bytes per row including index entries; calibrated while building.
EST_ROW_BYTES = {
    "users": 330.0,
    "orders": 210.0,
    "order_items": 80.0,
    "events": 380.0,
    "documents": 9000.0,
}

SCHEMA = """
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  email         TEXT NOT NULL,
  name          TEXT NOT NULL,
  country       TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  last_login    INTEGER,
  balance_cents INTEGER NOT NULL DEFAULT 0,
  profile       TEXT
);
CREATE UNIQUE INDEX users_email ON users(email);
CREATE INDEX users_country_created ON users(country, created_at);

CREATE TABLE orders (
  id               INTEGER PRIMARY KEY,
  user_id          INTEGER NOT NULL REFERENCES users(id),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  status           TEXT NOT NULL,
  total_cents      INTEGER NOT NULL,
  currency         TEXT NOT NULL,
  shipping_address TEXT NOT NULL,
  note             TEXT
);
CREATE INDEX orders_user_created ON orders(user_id, created_at);
CREATE INDEX orders_status_created ON orders(status, created_at);

CREATE TABLE order_items (
  id               INTEGER PRIMARY KEY,
  order_id         INTEGER NOT NULL REFERENCES orders(id),
  sku              TEXT NOT NULL,
  quantity         INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL
);
CREATE INDEX order_items_order ON order_items(order_id);
CREATE INDEX order_items_sku ON order_items(sku);

CREATE TABLE events (
  id           INTEGER PRIMARY KEY,
  ts           INTEGER NOT NULL,
  user_id      INTEGER NOT NULL,
  kind         TEXT NOT NULL,
  payload      TEXT NOT NULL,
  processed_at INTEGER
);
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_user_kind ON events(user_id, kind);

CREATE TABLE documents (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id),
  name       TEXT NOT NULL,
  mime       TEXT NOT NULL,
  size       INTEGER NOT NULL,
  version    INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  body       BLOB NOT NULL
);
CREATE INDEX documents_user ON documents(user_id);
CREATE INDEX documents_name ON documents(name);
"""

BIG_TABLES = ("users", "orders", "order_items", "events", "documents")

COUNTRIES = ["US", "DE", "FR", "GB", "IT", "ES", "NL", "SE", "PL", "BR", "CA",
             "MX", "JP", "IN", "AU", "CH", "AT", "BE", "DK", "NO", "FI", "IE",
             "PT", "CZ", "RO", "HU", "GR", "TR", "ZA", "KR"]
STATUSES = ["pending", "paid", "packed", "shipped", "delivered", "cancelled", "refunded"]
STATUS_WEIGHTS = [5, 8, 4, 10, 60, 8, 5]
CURRENCIES = ["USD", "EUR", "GBP", "SEK", "PLN", "JPY"]
EVENT_KINDS = ["page_view", "click", "search", "add_to_cart", "remove_from_cart",
               "checkout", "login", "logout", "api_call", "error"]
EVENT_WEIGHTS = [40, 20, 10, 8, 2, 3, 6, 4, 6, 1]
BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.4.0",
]
TEXT_MIMES = ["text/plain", "text/markdown", "application/json", "text/html", "text/csv"]
BINARY_MIMES = ["image/jpeg", "image/png", "application/pdf", "application/zip"]
BASE_TS = 1_640_995_200  # 2022-01-01T00:00:00Z
SPAN_TS = 3 * 365 * 86400


def make_words(rng, n):
    syl = ["ka", "ro", "mi", "ten", "sa", "lo", "ver", "an", "di", "po", "que", "ri",
           "tor", "el", "na", "bu", "ship", "ment", "ing", "ex", "pre", "con", "al",
           "is", "ter", "for", "ly", "de", "com", "pro", "un", "re", "ca", "to"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syl) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    return sorted(words)


class Generator:
    """Produces rows; all randomness comes from one seeded Random."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        rng = self.rng
        self.words = make_words(rng, 3000)
        # Zipf-like word frequencies make the text compress like prose (~3x with zstd).
        weights = [1.0 / (i + 1) for i in range(len(self.words))]
        acc, cum = 0.0, []
        for w in weights:
            acc += w
            cum.append(acc)
        chunks = []
        for _ in range(64):
            ws = rng.choices(self.words, cum_weights=cum, k=20000)
            # sentences: capitalised start, a full stop every ~12 words, paragraph breaks
            out = []
            for i, w in enumerate(ws):
                out.append(w)
                if i % 12 == 11:
                    out[-1] = w + (".\n\n" if i % 97 == 96 else ".")
            chunks.append(" ".join(out))
        self.pool = "\n".join(chunks).encode()
        self.first_names = [w.capitalize() for w in self.words[:400]]
        self.last_names = [w.capitalize() for w in self.words[400:1400]]
        self.streets = [w.capitalize() + s for w in self.words[1400:1700]
                        for s in (" Street", " Road", " Avenue")]
        self.skus = ["SKU-%06d" % i for i in range(50000)]
        self.paths = ["/" + "/".join(self.words[(i * 7 + j * 13) % 3000] for j in range(1 + i % 3))
                      for i in range(500)]

    def text(self, n):
        """n bytes of word text, taken at a random place of the pool."""
        pool = self.pool
        start = self.rng.randrange(len(pool))
        end = start + n
        if end <= len(pool):
            return pool[start:end]
        out = pool[start:]
        while len(out) < n:
            out += pool[: n - len(out)]
        return out

    # The row generators below index lists with int(random() * n) instead of
    # rng.choice/randrange: same distribution, about three times faster.

    def users(self, first_id, count):
        r = self.rng.random
        fn, ln, ctry, dom = self.first_names, self.last_names, COUNTRIES, self.words[:200]
        nfn, nln, nct = len(fn), len(ln), len(ctry)
        langs, themes = ("en", "de", "fr", "es", "sv"), ("light", "dark", "auto")
        for uid in range(first_id, first_id + count):
            f, l = fn[int(r() * nfn)], ln[int(r() * nln)]
            created = BASE_TS + int(r() * SPAN_TS)
            profile = ('{"lang":"%s","newsletter":%s,"bio":"%s","theme":"%s"}'
                       % (langs[int(r() * 5)], "true" if r() < 0.4 else "false",
                          self.text(20 + int(r() * 140)).decode().replace("\n", " ").replace('"', ""),
                          themes[int(r() * 3)]))
            yield (uid, "%s.%s%d@%s.example" % (f.lower(), l.lower(), uid, dom[int(r() * 200)]),
                   f + " " + l, ctry[int(r() * nct)], created,
                   created + int(r() * 86400 * 200) if r() < 0.8 else None,
                   -5000 + int(r() * 505000), profile)

    def orders_and_items(self, first_order, count, first_item, max_user):
        """Returns (orders rows, items rows, next item id)."""
        r = self.rng.random
        skus, streets, lnames = self.skus, self.streets, self.last_names
        nsku, nst, nln, nct = len(skus), len(streets), len(lnames), len(COUNTRIES)
        qtys = (1, 1, 1, 2, 2, 3, 5)
        statuses = [s for s, w in zip(STATUSES, STATUS_WEIGHTS) for _ in range(w)]
        nstat = len(statuses)
        orders, items = [], []
        item_id = first_item
        for oid in range(first_order, first_order + count):
            created = BASE_TS + (oid * 977) % SPAN_TS
            total = 0
            for _ in range(1 + int(r() * 4)):
                qty = qtys[int(r() * 7)]
                price = 199 + int(r() * 49800)
                total += qty * price
                items.append((item_id, oid, skus[int(r() * nsku)], qty, price))
                item_id += 1
            addr = "%d %s, %05d %s, %s" % (1 + int(r() * 998), streets[int(r() * nst)],
                                          int(r() * 100000), lnames[int(r() * nln)],
                                          COUNTRIES[int(r() * nct)])
            note = self.text(10 + int(r() * 110)).decode() if r() < 0.25 else None
            orders.append((oid, 1 + int(r() * max_user), created, created + int(r() * 864000),
                           statuses[int(r() * nstat)], total, CURRENCIES[int(r() * 6)], addr, note))
        return orders, items, item_id

    def events(self, first_id, count, max_user):
        rng = self.rng
        r, bits = rng.random, rng.getrandbits
        paths, skus = self.paths, self.skus
        npath, nsku, nbr = len(paths), len(skus), len(BROWSERS)
        kinds = rng.choices(EVENT_KINDS, EVENT_WEIGHTS, k=count)
        for i, eid in enumerate(range(first_id, first_id + count)):
            kind = kinds[i]
            payload = ('{"session":"%016x","path":"%s","ref":"%s","ua":"%s","ip":"10.%d.%d.%d",'
                       '"ms":%d,"items":[%s],"ok":%s}'
                       % (bits(64), paths[int(r() * npath)], paths[int(r() * npath)],
                          BROWSERS[int(r() * nbr)], bits(8), bits(8), bits(8), 2 + int(r() * 2998),
                          ",".join(['"%s"' % skus[int(r() * nsku)] for _ in range(int(r() * 4))]),
                          "false" if kind == "error" else "true"))
            yield (eid, BASE_TS + eid * 7 + int(r() * 5), 1 + int(r() * max_user), kind, payload, None)

    def doc_size(self):
        rng = self.rng
        if rng.random() < 0.02:
            return rng.randrange(256 * 1024, 1024 * 1024)
        return int(math.exp(rng.uniform(math.log(200), math.log(64 * 1024))))

    def doc_body(self, size, binary):
        return self.rng.randbytes(size) if binary else self.text(size)

    def documents(self, first_id, count, max_user):
        rng = self.rng
        for did in range(first_id, first_id + count):
            binary = rng.random() < 0.15
            size = self.doc_size()
            mime = rng.choice(BINARY_MIMES if binary else TEXT_MIMES)
            created = BASE_TS + rng.randrange(SPAN_TS)
            name = "%s-%s-%d.%s" % (rng.choice(self.words), rng.choice(self.words), did,
                                    mime.split("/")[1])
            yield (did, rng.randint(1, max_user), name, mime, size, 1, created,
                   created + rng.randrange(86400 * 30), self.doc_body(size, binary))


def file_bytes(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]


def build(args):
    path = os.path.abspath(args.path)
    target = int(args.size_mib * MIB)
    if os.path.exists(path):
        if not args.force:
            sys.exit("make_db.py: %s exists (use --force to replace it, or --change-percent to change it)" % path)
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
    tmp = path + ".building"
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(tmp + suffix)
        except FileNotFoundError:
            pass
    t0 = time.monotonic()
    gen = Generator(args.seed)
    rng = gen.rng
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA page_size=%d" % args.page_size)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-%d" % (512 * 1024))  # 512 MiB
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.executescript(SCHEMA)

    next_id = {t: 1 for t in BIG_TABLES}
    next_item = 1
    per_row = dict(EST_ROW_BYTES)
    rows = {t: 0 for t in BIG_TABLES}
    rows["order_items"] = 0
    size = file_bytes(conn)
    # Batches of up to 32 MiB (smaller for small databases), smaller at the end.
    max_batch = max(256 * 1024, min(32 * MIB, target // 16))
    rounds = 0
    while size < target and rounds < 100000:
        rounds += 1
        budget = max(128 * 1024, min(max_batch, target - size))
        for table in ("users", "orders", "events", "documents"):
            if table == "orders":
                # orders and their items share one batch; budget both tables' shares
                want = budget * (SHARES["orders"] + SHARES["order_items"])
                unit = per_row["orders"] + 2.5 * per_row["order_items"]
            else:
                want = budget * SHARES[table]
                unit = per_row[table]
            n = max(1, int(round(want / unit)))
            max_user = max(1, next_id["users"] - 1)
            before = file_bytes(conn)
            conn.execute("BEGIN")
            if table == "users":
                conn.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?,?)",
                                 gen.users(next_id["users"], n))
            elif table == "orders":
                orders, items, next_item2 = gen.orders_and_items(next_id["orders"], n, next_item, max_user)
                conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)", orders)
                conn.executemany("INSERT INTO order_items VALUES (?,?,?,?,?)", items)
                rows["order_items"] += len(items)
                next_id["order_items"] = next_item2
                next_item = next_item2
            elif table == "events":
                conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)",
                                 gen.events(next_id["events"], n, max_user))
            else:
                conn.executemany("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                                 gen.documents(next_id["documents"], n, max_user))
            conn.execute("COMMIT")
            next_id[table] += n
            rows[table] += n
            grown = file_bytes(conn) - before
            # calibrate bytes per row (smoothed) once batches are big enough to tell
            if grown > 64 * 1024:
                measured = grown / n
                if table == "orders":
                    measured = grown / n / (per_row["orders"] + 2.5 * per_row["order_items"])
                    per_row["orders"] *= measured
                    per_row["order_items"] *= measured
                else:
                    per_row[table] = 0.5 * per_row[table] + 0.5 * measured
        size = file_bytes(conn)
    conn.close()
    os.replace(tmp, path)
    conn = sqlite3.connect(path, isolation_level=None)
    mode = conn.execute("PRAGMA journal_mode=%s" % args.journal_mode).fetchone()[0]
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA optimize")
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    if mode == "wal":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    took = time.monotonic() - t0
    info = {
        "path": path, "bytes": os.path.getsize(path), "page_size": page_size,
        "page_count": page_count, "journal_mode": mode, "rows": rows,
        "seconds": round(took, 2),
    }
    if args.json:
        print(json.dumps(info))
    else:
        print("built %s: %.1f MiB, %d pages of %d B, journal_mode=%s, rows: %s, %.1f s"
              % (path, info["bytes"] / MIB, page_count, page_size, mode,
                 " ".join("%s=%d" % kv for kv in rows.items()), took))


def wal_changed_pages(wal_path, db_path, page_size):
    """Pages whose newest valid frame in the WAL differs from the page in the main file.

    Call after COMMIT and before the checkpoint: the main file still holds the old
    content, so a page that SQLite rewrote without changing it is not counted."""
    newest = {}
    try:
        f = open(wal_path, "rb")
    except FileNotFoundError:
        return set()
    with f:
        hdr = f.read(32)
        if len(hdr) < 32:
            return set()
        salt = hdr[16:24]
        while True:
            fh = f.read(24)
            if len(fh) < 24 or fh[8:16] != salt:
                break
            data = f.read(page_size)
            if len(data) < page_size:
                break
            newest[struct.unpack(">I", fh[:4])[0]] = hashlib.blake2b(data, digest_size=16).digest()
    changed = set()
    with open(db_path, "rb") as db:
        for pgno in sorted(newest):
            db.seek((pgno - 1) * page_size)
            old = db.read(page_size)
            if len(old) < page_size or hashlib.blake2b(old, digest_size=16).digest() != newest[pgno]:
                changed.add(pgno)
    return changed


def table_pages(conn):
    """Pages of each table's own b-tree (leaf+overflow+interior), and its overflow pages."""
    out, ovf = {}, {}
    try:
        for name, ptype, n in conn.execute(
                "SELECT name, pagetype, count(*) FROM dbstat WHERE name IN (%s) GROUP BY name, pagetype"
                % ",".join("'%s'" % t for t in BIG_TABLES)):
            out[name] = out.get(name, 0) + n
            if ptype == "overflow":
                ovf[name] = ovf.get(name, 0) + n
    except sqlite3.Error:
        total = conn.execute("PRAGMA page_count").fetchone()[0]
        out = {t: total * SHARES[t] * 0.7 for t in BIG_TABLES}
        ovf = {"documents": out["documents"] * 0.9}
    return out, ovf


def change(args):
    path = os.path.abspath(args.path)
    if not os.path.exists(path):
        sys.exit("make_db.py: %s does not exist (build it first)" % path)
    t0 = time.monotonic()
    gen = Generator(args.seed if args.seed_given else int(time.time() * 1000) & 0xFFFFFFFF)
    rng = gen.rng
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA cache_size=-%d" % (256 * 1024))
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the WAL must hold the whole change until counted
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    orig_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if orig_mode != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    target = max(1, int(math.ceil(total_pages * args.change_percent / 100.0)))
    tpages, ovf = table_pages(conn)
    max_id = {t: conn.execute("SELECT coalesce(max(id),0) FROM %s" % t).fetchone()[0] for t in BIG_TABLES}
    tables = [t for t in BIG_TABLES if max_id[t] > 0 and tpages.get(t, 0) > 0]
    if not tables:
        sys.exit("make_db.py: %s has none of the benchmark tables" % path)
    sum_pages = sum(tpages[t] for t in tables)
    # Pages one updated row costs in its own table (index pages come on top: orders).
    cost = {t: 1.0 for t in tables}
    if "documents" in tables:
        cost["documents"] = 1.0 + ovf.get("documents", 0) / max(1, max_id["documents"])
    if "orders" in tables:
        cost["orders"] = 2.0
    changed = set()
    factor = 1.0
    rounds = 0
    now = int(time.time())
    # Round 1 aims at half of the target to learn what an update really costs (page
    # splits, index pages, freelist pages); later rounds aim at 90 % of what remains.
    while len(changed) < target * 0.97 and rounds < 12:
        rounds += 1
        remaining = (target - len(changed)) * (0.5 if rounds == 1 else 0.9)
        planned = 0.0
        conn.execute("BEGIN")
        for t in tables:
            pages_t = remaining * tpages[t] / sum_pages * factor
            n = int(round(pages_t / cost[t]))
            if n <= 0 and rng.random() < pages_t / cost[t]:
                n = 1
            n = min(n, max_id[t])
            if n <= 0:
                continue
            if t != "documents":
                planned += n * cost[t]
            ids = rng.sample(range(1, max_id[t] + 1),
                             min(max_id[t], 4 * n + 50) if t == "documents" else n)
            if t == "users":
                conn.executemany("UPDATE users SET balance_cents=?, last_login=? WHERE id=?",
                                 ((rng.randrange(-5000, 500000), now, i) for i in ids))
            elif t == "orders":
                conn.executemany("UPDATE orders SET status=?, updated_at=? WHERE id=?",
                                 ((rng.choice(STATUSES), now, i) for i in ids))
            elif t == "order_items":
                conn.executemany("UPDATE order_items SET quantity=?, unit_price_cents=? WHERE id=?",
                                 ((rng.choice((1, 2, 3, 4)), rng.randrange(199, 49999), i) for i in ids))
            elif t == "events":
                conn.executemany("UPDATE events SET processed_at=? WHERE id=?",
                                 ((now + rng.randrange(3600), i) for i in ids))
            else:
                # Documents vary from 1 to ~260 pages: walk random rows and take those
                # that fit the page budget, so that one huge blob cannot overshoot it.
                budget = n * cost[t]
                spent = 0.0
                for i in ids:
                    if spent >= budget:
                        break
                    row = conn.execute("SELECT length(body), mime FROM documents WHERE id=?", (i,)).fetchone()
                    if row is None:
                        continue
                    pages = 1.0 + (row[0] // (page_size - 4) if row[0] > page_size // 4 else 0)
                    if spent + pages > budget * 1.1 and spent > 0:
                        continue
                    spent += pages
                    planned += pages
                    binary = not (row[1].startswith("text/") or row[1] == "application/json")
                    conn.execute("UPDATE documents SET body=?, version=version+1, updated_at=? WHERE id=?",
                                 (gen.doc_body(row[0], binary), now, i))
        conn.execute("COMMIT")
        got = wal_changed_pages(path + "-wal", path, page_size)
        new = got - changed
        changed |= got
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if planned > 0 and len(new) > 0:
            # next round: correct the plan by what one planned page really cost
            factor = max(0.2, min(5.0, planned / len(new)))
    if orig_mode != "wal":
        conn.execute("PRAGMA journal_mode=%s" % orig_mode)
    else:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages_after = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    took = time.monotonic() - t0
    info = {"path": path, "page_count": total_pages, "page_count_after": pages_after,
            "target_pages": target,
            "changed_pages": len(changed), "changed_percent": round(100.0 * len(changed) / total_pages, 3),
            "rounds": rounds, "seconds": round(took, 2)}
    if args.json:
        print(json.dumps(info))
    else:
        print("changed %s: %d of %d pages (%.2f %%, asked %.2f %%; now %d pages) in %d round(s), %.1f s"
              % (path, len(changed), total_pages, info["changed_percent"], args.change_percent,
                 pages_after, rounds, took))


def main():
    p = argparse.ArgumentParser(description="Build or change a realistic SQLite database for benchmarks.")
    p.add_argument("path", help="database file")
    p.add_argument("--size-mib", type=float, default=1024, help="target size in MiB (default 1024)")
    p.add_argument("--journal-mode", default="wal",
                   choices=["wal", "delete", "truncate", "persist", "memory", "off"],
                   help="journal mode of the finished database (default wal)")
    p.add_argument("--page-size", type=int, default=4096, help="page size (default 4096)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (build default 42; change default: time-based)")
    p.add_argument("--force", action="store_true", help="replace an existing file when building")
    p.add_argument("--change-percent", type=float, default=None, metavar="P",
                   help="change about P %% of the pages of the existing database PATH")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args()
    args.seed_given = args.seed is not None
    if args.seed is None:
        args.seed = 42
    if args.change_percent is not None:
        if not (0 < args.change_percent <= 100):
            p.error("--change-percent must be in (0, 100]")
        change(args)
    else:
        if args.size_mib <= 0:
            p.error("--size-mib must be positive")
        if args.page_size < 512 or args.page_size > 65536 or args.page_size & (args.page_size - 1):
            p.error("--page-size must be a power of two between 512 and 65536")
        build(args)


if __name__ == "__main__":
    main()
