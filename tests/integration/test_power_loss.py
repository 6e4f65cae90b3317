#!/usr/bin/env python3
"""Power loss, simulated from the system calls of the real `sqlbakctl --offline`.

`backup` and `rotate` (which prunes) run under `strace -f -y`; the trace of the
calls on the target directory gives the order in which data and names reach it.
Checked on the trace:

- every object (pack, index, manifest, config) is fsynced after its last write and
  before it is renamed into place, and its directory is fsynced after the rename;
- a manifest is renamed into place only after every pack and index it references
  is in place with its directory fsynced (or was there before the run), and an
  index only after its pack;
- prune deletes a manifest before the packs and indexes it referenced, and an
  index before its pack.

And a model of a power loss after each call ("drop unsynced writes"): a file's
data survives only if it was fsynced after its last write; a name created,
replaced or removed in a directory survives only if that directory was fsynced
afterwards, otherwise the directory may hold the old or the new entry (any of
them). For every point, no manifest that may be listed after the power loss may
reference a pack or index that may be lost, no manifest that may be listed may
have unsynced data, and no index that may be there may name a pack that may be
lost.

Directories are assumed to survive once created in the main model. The
`StrictDurability` tests drop that assumption: new directories (packs/<hh>,
manifests/<db>, ...) must be made durable in their parent, and prune's deletions
fsynced between the manifests and the packs. (Both were gaps found by this test
and closed in lib/local_store.cc.)

Exits 77 (skipped) when strace is missing or cannot ptrace in this container.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import sqlbaktest as T

STRACE = shutil.which("strace")
TRACED = ("openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,"
          "unlink,unlinkat,mkdir,mkdirat")
RETENTION = ("{keep_last: 1, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, "
             "keep_monthly: 0, keep_yearly: 0, keep_within: 0s}")


def strace_works():
    if STRACE is None:
        return "strace is not installed (scripts/install-deps.sh installs it)"
    p = subprocess.run([STRACE, "-f", "-o", os.devnull, "/bin/true"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return "strace cannot trace here: %s" % p.stderr.strip()
    return None


# --- the trace -------------------------------------------------------------------------

LINE_RE = re.compile(r"^(\d+)\s+(.*)$")
CALL_RE = re.compile(r"^(\w+)\((.*)$")
RESUMED_RE = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
RESULT_RE = re.compile(r"^(.*)\)\s+=\s+(-?\d+|\?)(.*)$")
QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
FD_RE = re.compile(r"^\s*(-?\d+|AT_FDCWD)<([^>]*)>")
# renameat(2): the two directory fds (with their paths) before each path.
RENAMEAT_RE = re.compile(r'^(\S+<[^>]*>), "(?:[^"\\]|\\.)*", (\S+<[^>]*>), ')


class Call:
    """One completed system call: NAME, its argument text, result; START and END
    are the positions of its first and last line in the trace (a call of another
    thread may lie between them)."""

    def __init__(self, name, args, result, start, end, line):
        self.name, self.args, self.result = name, args, result
        self.start, self.end, self.line = start, end, line

    def ok(self):
        return self.result is not None and self.result >= 0

    def quoted(self):
        return [s.encode().decode("unicode_escape") for s in QUOTED_RE.findall(self.args)]

    def fd_path(self):
        m = FD_RE.match(self.args)
        return m.group(2) if m else None

    def __repr__(self):
        return "#%d %s" % (self.start, self.line.strip()[:300])


def parse_trace(path):
    calls, pending = [], {}
    with open(path, errors="replace") as f:
        for pos, raw in enumerate(f):
            m = LINE_RE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, rest = m.group(1), m.group(2)
            r = RESUMED_RE.match(rest)
            if r:
                name, head_args, start = pending.pop(pid, (r.group(1), "", pos))
                rest = name + "(" + head_args + r.group(2)
            else:
                start = pos
            if rest.endswith("<unfinished ...>"):
                c = CALL_RE.match(rest[:-len("<unfinished ...>")].rstrip())
                if c:
                    pending[pid] = (c.group(1), c.group(2), start)
                continue
            c = CALL_RE.match(rest)
            if not c:
                continue  # signals, exits
            res = RESULT_RE.match(c.group(2))
            if not res:
                continue
            result = None if res.group(2) == "?" else int(res.group(2))
            calls.append(Call(c.group(1), res.group(1), result, start, pos, raw))
    return calls


class Op:
    """A call on the target, reduced to what the model needs: KIND one of create,
    write, fsync, rename, unlink, mkdir; PATH (and DEST for a rename) relative to
    the target's root ('' is the root)."""

    def __init__(self, kind, path, call, dest=None):
        self.kind, self.path, self.call, self.dest = kind, path, call, dest

    def __repr__(self):
        return repr(self.call)


def target_ops(calls, root):
    root = os.path.realpath(root)

    def rel(p):
        if p is None:
            return None
        p = os.path.normpath(p)
        if p == root:
            return ""
        if p.startswith(root + "/"):
            return p[len(root) + 1:]
        return None

    def at_path(dirfd_text, p):
        if p.startswith("/"):
            return p
        m = FD_RE.match(dirfd_text)
        return os.path.join(m.group(2), p) if m else p

    ops = []
    for c in calls:
        if not c.ok():
            continue
        q = c.quoted()
        if c.name == "openat" and "O_CREAT" in c.args and q:
            p = rel(at_path(c.args, q[0]))
            if p is not None:
                ops.append(Op("create", p, c))
        elif c.name in ("write", "pwrite64", "pwrite", "writev"):
            p = rel(c.fd_path())
            if p is not None:
                ops.append(Op("write", p, c))
        elif c.name in ("fsync", "fdatasync"):
            p = rel(c.fd_path())
            if p is not None:
                ops.append(Op("fsync", p, c))
        elif c.name in ("rename", "renameat", "renameat2") and len(q) >= 2:
            if c.name == "rename":
                a, b = q[0], q[1]
            else:
                m = RENAMEAT_RE.match(c.args)
                if not m:
                    continue
                a, b = at_path(m.group(1), q[0]), at_path(m.group(2), q[1])
            ra, rb = rel(a), rel(b)
            if ra is not None or rb is not None:
                ops.append(Op("rename", ra, c, dest=rb))
        elif c.name in ("unlink", "unlinkat") and q:
            p = rel(at_path(c.args, q[0]) if c.name == "unlinkat" else q[0])
            if p is not None:
                ops.append(Op("unlink", p, c))
        elif c.name in ("mkdir", "mkdirat") and q:
            p = rel(at_path(c.args, q[0]) if c.name == "mkdirat" else q[0])
            if p is not None:
                ops.append(Op("mkdir", p, c))
    return ops


# --- the power-loss model -----------------------------------------------------------

class Node:
    def __init__(self, kind, synced, doc=None):
        self.kind = kind      # "file" or "dir"
        self.synced = synced  # a file's data is on disk (fsynced after its last write)
        self.doc = doc        # a manifest's document (parsed JSON)


def split(path):
    return (path.rsplit("/", 1) if "/" in path else ("", path))


class PowerLossModel:
    """The target as the disk may hold it after a power loss at the current point.

    cur: the namespace as the running program sees it. durable[D]: D's entries as of
    its last fsync. pending[D][name]: every value (a Node, or None for absent) the
    name took in D since then; after a power loss the name holds the durable value
    or any pending one."""

    def __init__(self, root, docs_after=None):
        """ROOT as it is now, all of it on disk. DOCS_AFTER: the manifests (relative
        path -> document) as they will be after the run, for those it writes."""
        self.docs_after = docs_after or {}
        self.manifest_paths = set()
        self.index_paths = set()
        self.cur, self.durable, self.pending = {"": Node("dir", True)}, {"": {}}, {"": {}}
        for dirpath, dirs, files in os.walk(root):
            d = os.path.relpath(dirpath, root)
            d = "" if d == "." else d
            for name in dirs + files:
                p = name if not d else d + "/" + name
                node = Node("dir" if name in dirs else "file", True)
                if p.startswith("index/") and name in files:
                    self.index_paths.add(p)
                if p.startswith("manifests/") and name in files:
                    with open(os.path.join(root, p)) as f:
                        node.doc = json.load(f)
                    self.manifest_paths.add(p)
                self.cur[p] = node
                self.durable.setdefault(d, {})[name] = node
                if node.kind == "dir":
                    self.durable.setdefault(p, {})
                    self.pending.setdefault(p, {})

    def _set(self, path, node):
        d, name = split(path)
        self.pending.setdefault(d, {}).setdefault(name, []).append(node)
        if node is None:
            self.cur.pop(path, None)
        else:
            self.cur[path] = node

    def apply(self, op):
        if op.kind == "create":
            if op.path not in self.cur:
                self._set(op.path, Node("file", False))
        elif op.kind == "write":
            if op.path in self.cur:
                self.cur[op.path].synced = False
        elif op.kind == "fsync":
            node = self.cur.get(op.path)
            if node is None:
                return
            if node.kind == "dir":
                prefix = op.path + "/" if op.path else ""
                self.durable[op.path] = {
                    p[len(prefix):]: n for p, n in self.cur.items()
                    if p and p.startswith(prefix) and "/" not in p[len(prefix):]}
                self.pending[op.path] = {}
            else:
                node.synced = True
        elif op.kind == "rename":
            node = self.cur.get(op.path) if op.path is not None else Node("file", False)
            if op.path is not None:
                self._set(op.path, None)
            if op.dest is not None:
                if op.dest.startswith("index/"):
                    self.index_paths.add(op.dest)
                if op.dest.startswith("manifests/"):
                    node.doc = self.docs_after.get(op.dest)
                    self.manifest_paths.add(op.dest)
                self._set(op.dest, node)
        elif op.kind == "unlink":
            self._set(op.path, None)
        elif op.kind == "mkdir":
            if op.path not in self.cur:
                self._set(op.path, Node("dir", True))
                self.durable.setdefault(op.path, {})
                self.pending.setdefault(op.path, {})

    def possible(self, path):
        d, name = split(path)
        return [self.durable.get(d, {}).get(name)] + self.pending.get(d, {}).get(name, [])

    def ancestors(self, path):
        parts = path.split("/")[:-1]
        return ["/".join(parts[:i + 1]) for i in range(len(parts))]

    def may_be_listed(self, path, strict_dirs):
        if strict_dirs and not all(any(v is not None for v in self.possible(a))
                                   for a in self.ancestors(path)):
            return False
        return any(v is not None for v in self.possible(path))

    def lost_how(self, path, strict_dirs):
        """Why PATH may be missing or hold unsynced data after a power loss now (None
        when it surely survives whole)."""
        if strict_dirs:
            for a in self.ancestors(path):
                if any(v is None for v in self.possible(a)):
                    return "its directory %s/ may be gone (its parent never fsynced after mkdir)" % a
        vals = self.possible(path)
        if any(v is None for v in vals):
            return "its name may be gone (directory not fsynced since it changed)"
        if any(not v.synced for v in vals):
            return "its data may be lost (not fsynced)"
        return None


def object_keys(manifest_doc):
    m = manifest_doc.get("manifest", manifest_doc)
    keys = []
    for p in m["packs"]:
        keys += ["packs/%s/%s" % (p["id"][:2], p["id"]), "index/%s/%s" % (p["id"][:2], p["id"])]
    return keys


def power_loss_violations(model, ops, strict_dirs=False, limit=10):
    """Runs MODEL (the target before the run) over OPS and, before the first and after
    every one, looks at each manifest the disk may hold after a power loss there.
    Returns the violations found (at most LIMIT)."""
    out = []

    def check(where):
        for mpath in sorted(model.manifest_paths):
            if not model.may_be_listed(mpath, strict_dirs):
                continue
            for node in model.possible(mpath):
                if node is None:
                    continue
                if not node.synced:
                    out.append("power loss %s: %s may be listed with unsynced data" % (where, mpath))
                for key in object_keys(node.doc) if node.doc else []:
                    why = model.lost_how(key, strict_dirs)
                    if why:
                        out.append("power loss %s: %s may be listed but %s may be lost: %s" % (
                            where, mpath, key, why))
                if len(out) >= limit:
                    return

        # An index names a pack: a backup that reads it may reuse the pack's pages.
        for ipath in sorted(model.index_paths):
            if not model.may_be_listed(ipath, strict_dirs):
                continue
            pack = "packs/" + ipath[len("index/"):]
            why = model.lost_how(pack, strict_dirs)
            if why:
                out.append("power loss %s: %s may be read but %s may be lost: %s" % (
                    where, ipath, pack, why))
            if len(out) >= limit:
                return

    check("before the run")
    for op in ops:
        model.apply(op)
        if len(out) < limit:
            check("after %r" % op)
    return out[:limit]


# --- the tests --------------------------------------------------------------------

class PowerLoss(T.EnvTestCase):

    env_kwargs = {"extra_defaults": {"retention": RETENTION}}

    def setUp(self):
        super().setUp()
        self.db = self.env.add_database("app")
        T.create_db(self.db, rows=20000, row_bytes=1000, journal_mode="wal")
        self.root = os.path.realpath(self.env.target)
        self.runs = 0

    def change(self, fraction):
        con = T.connect(self.db)
        con.execute("UPDATE t SET b = randomblob(1000) WHERE id %% %d = 0" % int(1 / fraction))
        con.close()

    def manifest_docs(self):
        docs = {}
        for rel in T.files_under(self.root):
            if rel.startswith("manifests/"):
                with open(os.path.join(self.root, rel)) as f:
                    docs[rel] = json.load(f)
        return docs

    def traced_run(self, *args):
        """Runs sqlbakctl ARGS under strace. Returns (model, ops, before, after): the
        power-loss model of the target as it was before the run, the calls on the
        target, and the manifests (relative path -> document) before and after."""
        model = PowerLossModel(self.root)
        before = self.manifest_docs()
        files_before = set(T.files_under(self.root))
        self.runs += 1
        trace = self.env.path("trace-%d" % self.runs)
        cmd = [STRACE, "-f", "-y", "-qq", "-s", "0", "-o", trace, "-e", "trace=" + TRACED,
               T.SQLBAKCTL] + self.env.ctl_args(*args)
        # LeakSanitizer cannot run under ptrace and aborts the program at exit; the
        # sanitizer build's leak checks are made by every other test.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=T.COMMAND_TIMEOUT, env=env)
        T.assert_no_crash(p.returncode, p.stdout, p.stderr, cmd)
        self.assertEqual(p.returncode, 0, T.describe(cmd, p.returncode, p.stdout, p.stderr))
        ops = target_ops(parse_trace(trace), self.root)
        self.assertTrue(ops, "the trace holds no call on the target: %s" % trace)
        after = self.manifest_docs()
        model.docs_after = after
        self.files_before = files_before
        return model, ops, before, after

    # --- order checks -------------------------------------------------------------

    def put_order_violations(self, ops, after):
        """The durable-put order of every object OPS stores. Returns (violations,
        the renames into packs/, index/, manifests/ and config, in order)."""
        bad = []
        renames = [o for o in ops if o.kind == "rename" and o.dest is not None
                   and re.match(r"^(packs|index|manifests)/|^config$", o.dest)]
        placed = {}  # key -> the rename that put it in place
        unlinked = {o.path for o in ops if o.kind == "unlink"}
        for r in renames:
            placed[r.dest] = r
            writes = [o for o in ops if o.kind == "write" and o.path == r.path
                      and o.call.end < r.call.start]
            syncs = [o for o in ops if o.kind == "fsync" and o.path == r.path
                     and o.call.end < r.call.start
                     and all(o.call.start > w.call.end for w in writes)]
            if not writes:
                bad.append("%s renamed into place from %s, which was never written" % (r.dest, r.path))
            if not syncs:
                bad.append("%s renamed into place without an fsync of %s after its last write: %r" % (
                    r.dest, r.path, r))
            d = split(r.dest)[0]
            if not any(o.kind == "fsync" and o.path == d and o.call.start > r.call.end for o in ops):
                bad.append("directory %s/ not fsynced after %s was renamed into it" % (d or ".", r.dest))
        for r in renames:
            if r.dest.startswith("index/"):
                # The pack first: an index must never name a pack that is not there.
                pack = "packs/" + r.dest[len("index/"):]
                p = placed.get(pack)
                d = split(pack)[0]
                if pack in self.files_before and pack not in unlinked:
                    pass
                elif p is None or not p.call.end < r.call.start:
                    bad.append("index %s renamed before its pack was in place: %r" % (r.dest, r))
                elif not any(o.kind == "fsync" and o.path == d and p.call.end < o.call.start
                             and o.call.end < r.call.start for o in ops):
                    bad.append("index %s renamed before %s/ was fsynced after its pack arrived" % (
                        r.dest, d))
            if not r.dest.startswith("manifests/") or r.dest not in after:
                continue
            for key in object_keys(after[r.dest]):
                if key in self.files_before and key not in unlinked:
                    continue  # there, on disk, before the run
                p = placed.get(key)
                if p is None or not p.call.end < r.call.start:
                    bad.append("manifest %s renamed before %s was in place: %r" % (r.dest, key, r))
                    continue
                d = split(key)[0]
                if not any(o.kind == "fsync" and o.path == d and p.call.end < o.call.start
                           and o.call.end < r.call.start for o in ops):
                    bad.append("manifest %s renamed before %s/ was fsynced after %s arrived" % (
                        r.dest, d, key))
        return bad, renames

    def backup_traced(self):
        model, ops, _before, after = self.traced_run("backup", "app")
        bad, renames = self.put_order_violations(ops, after)
        self.assertEqual(bad, [], "\n".join(bad[:20]))
        kinds = [r.dest.split("/")[0] for r in renames]
        self.assertEqual(kinds.count("manifests"), 1, "one manifest per backup: %r" % renames)
        self.assertEqual(kinds[-1], "manifests", "the manifest is not the last object stored")
        self.assertGreaterEqual(kinds.count("packs"), 1, "the backup stored no pack: %r" % renames)
        self.assertEqual(kinds.count("packs"), kinds.count("index"))
        return model, ops

    def test_backup_durability_order_and_power_loss(self):
        # A full backup of a fresh target (two packs), then an incremental one.
        for fraction in (None, 0.1):
            with self.subTest(backup="full" if fraction is None else "incremental"):
                if fraction:
                    self.change(fraction)
                model, ops = self.backup_traced()
                bad = power_loss_violations(model, ops)
                self.assertEqual(bad, [], "\n".join(bad))
        self.env.verify_all(check=0)

    def rotate_traced(self):
        """A backup, then a backup of a database that shares no page with it, then
        `rotate` (keep 1) under strace; returns (model, ops, before, after, the path
        of the removed manifest)."""
        first = self.env.backup_one("app")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.unlink(self.db + suffix)
        T.create_db(self.db, rows=7000, row_bytes=1500, journal_mode="wal")
        second = self.env.backup_one("app")
        model, ops, before, after = self.traced_run("rotate", "app")
        self.assertEqual(self.env.list_ids(), [second["id"]])
        self.env.verify_all(check=0)
        gone = "manifests/app/%s.json" % first["id"]
        self.assertIn(gone, before)
        self.assertNotIn(gone, after)
        return model, ops, before, after, gone

    def test_prune_deletes_manifest_then_index_then_pack(self):
        _model, ops, before, after, gone = self.rotate_traced()
        unlinked = {o.path: o for o in ops if o.kind == "unlink"}
        packs = [p for p in unlinked if p.startswith("packs/")]
        self.assertTrue(packs, "the prune deleted no pack: the test proved nothing")
        self.assertIn(gone, unlinked)
        bad, _renames = self.put_order_violations(ops, after)  # repacked objects, if any
        # A manifest that went (or was rewritten) goes before the objects it needed.
        replaced = {o.dest: o for o in ops if o.kind == "rename" and o.dest in before}
        for mpath, doc in before.items():
            gone_at = unlinked.get(mpath) or replaced.get(mpath)
            if gone_at is None:
                continue
            for key in object_keys(doc):
                if key in unlinked and not gone_at.call.end < unlinked[key].call.start:
                    bad.append("%s deleted before the manifest %s that referenced it went" % (
                        key, mpath))
        for p in packs:
            idx = "index/" + p[len("packs/"):]
            if idx in self.files_before and idx not in unlinked:
                bad.append("%s deleted but its index %s kept" % (p, idx))
            elif idx in unlinked and not unlinked[idx].call.end < unlinked[p].call.start:
                bad.append("%s deleted before its index" % p)
        # Nothing a remaining manifest needs was deleted.
        for mpath, doc in after.items():
            for key in object_keys(doc):
                if not os.path.exists(os.path.join(self.root, key)):
                    bad.append("%s is gone though %s references it" % (key, mpath))
        self.assertEqual(bad, [], "\n".join(bad))


class StrictDurability(PowerLoss):
    """The strict model: directories too survive only once their parent is fsynced
    after the mkdir, and a deletion only once its directory is fsynced."""

    def test_new_directories_survive_power_loss(self):
        # packs/<hh>, index/<hh>, manifests/<db>: each new directory is made durable
        # in its parent before anything is stored in it.
        model, ops = self.backup_traced()
        bad = power_loss_violations(model, ops, strict_dirs=True)
        self.assertEqual(bad, [], "\n".join(bad))

    def test_prune_survives_power_loss(self):
        # A removed manifest must not come back after the packs it needed are gone.
        model, ops, _before, _after, _gone = self.rotate_traced()
        bad = power_loss_violations(model, ops)
        self.assertEqual(bad, [], "\n".join(bad))

    # The inherited tests run once, in PowerLoss.
    test_backup_durability_order_and_power_loss = None
    test_prune_deletes_manifest_then_index_then_pack = None


if __name__ == "__main__":
    why = strace_works()
    if why:
        sys.stderr.write("SKIP: %s\n" % why)
        sys.exit(77)
    T.main()
