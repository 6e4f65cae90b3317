#!/usr/bin/env python3
"""sqlbakd's control socket against hostile or unauthorised clients:
a peer outside the socket group is refused (and logged), and 1,000 garbage,
truncated, oversized and slow messages leave the daemon answering `status`."""
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

SQLBAKD = os.environ.get("SQLBAKD", "")
SQLBAKCTL = os.environ.get("SQLBAKCTL", "")


class DaemonFixture(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(SQLBAKD) and os.path.exists(SQLBAKCTL), "set SQLBAKD and SQLBAKCTL")
        self.dir = tempfile.mkdtemp(prefix="sqlbak-access-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "repo"))
        db = os.path.join(self.dir, "app.db")
        subprocess.run(["sqlite3", db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);"],
                       check=True, capture_output=True)
        self.sock = os.path.join(self.dir, "control.sock")
        self.config = os.path.join(self.dir, "sqlbak.yaml")
        with open(self.config, "w") as f:
            f.write(f"socket: {self.sock}\nstate_dir: {self.dir}/state\n"
                    f"targets: {{local: {{type: local, path: {self.dir}/repo}}}}\n"
                    f"databases:\n  - {{name: app, path: {db}}}\n")
        self.log = open(os.path.join(self.dir, "sqlbakd.log"), "w+")
        self.addCleanup(self.log.close)
        self.daemon = subprocess.Popen([SQLBAKD, "-c", self.config], stderr=self.log)
        self.addCleanup(self._stop)
        deadline = time.time() + 30
        while not os.path.exists(self.sock):
            self.assertIsNone(self.daemon.poll(), "sqlbakd exited at start")
            self.assertLess(time.time(), deadline, "control socket never appeared")
            time.sleep(0.05)

    def _stop(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()

    def ctl(self, *args, user=None):
        cmd = [SQLBAKCTL, "-c", self.config, *args]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def status_ok(self):
        r = self.ctl("--json", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["databases"][0]["name"], "app")

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()


class PeerCredentials(DaemonFixture):
    def test_socket_is_not_world_accessible(self):
        mode = os.stat(self.sock).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, oct(mode))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv to act as another user")
    def test_a_peer_outside_the_group_is_refused_and_logged(self):
        nobody = pwd.getpwnam("nobody").pw_uid
        # Let the connect through the file permissions, so that the daemon's
        # own SO_PEERCRED check is what refuses.
        os.chmod(self.sock, 0o666)
        r = self.ctl("status", user=nobody)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("permission denied", r.stderr.lower())
        self.assertIn(f"refused a control connection from uid {nobody}", self.log_text())
        self.status_ok()  # root still is served

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv to act as another user")
    def test_without_access_to_the_socket_file_the_client_says_so(self):
        nobody = pwd.getpwnam("nobody").pw_uid
        r = self.ctl("status", user=nobody)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn(self.sock, r.stderr)


class HostileClients(DaemonFixture):
    def exchange(self, payload, read=True):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect(self.sock)
            if payload:
                try:
                    s.sendall(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            if not read:
                return b""
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            s.close()

    def messages(self, rng):
        valid = json.dumps({"v": 1, "id": 1, "command": "status"}).encode()
        kinds = [
            lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) + b"\n",  # random bytes
            lambda: valid[: rng.randint(1, len(valid) - 1)],                               # truncated, no newline
            lambda: valid[: rng.randint(1, len(valid) - 1)] + b"\n",                       # truncated line
            lambda: b"[1,2,3]\n",                                                          # not an object
            lambda: b'{"v": 99, "command": "status"}\n',                                    # future version
            lambda: b'{"v": 1, "command": "' + bytes(rng.choice(b"xyz") for _ in range(8)) + b'"}\n',  # unknown
            lambda: b'{"v": 1, "command": "backup", "args": 7}\n',                          # bad args
            lambda: b'{"v": 1, "command": "verify", "args": {"ids": [1, {}], "all": "yes"}}\n',
            lambda: b"\n",                                                                 # empty line
            lambda: b"{" * rng.randint(1, 5000) + b"\n",                                  # deep nesting
            lambda: b"",                                                                   # connect, say nothing
        ]
        return [rng.choice(kinds)() for _ in range(1000)]

    def test_a_thousand_bad_messages_leave_the_daemon_answering(self):
        rng = random.Random(int(os.environ.get("SQLBAK_TEST_SEED", "1")))
        messages = self.messages(rng)
        errors = []

        def worker(chunk):
            for m in chunk:
                # Silent and truncated clients are cut off after 10 s; don't wait for them.
                reply = self.exchange(m, read=m.endswith(b"\n"))
                if m.endswith(b"\n") and reply:
                    line = reply.split(b"\n")[0]
                    obj = json.loads(line)
                    if obj.get("ok") is not False or "message" not in obj.get("error", {}):
                        errors.append((m[:80], line[:200]))

        threads = [threading.Thread(target=worker, args=(messages[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        self.assertEqual(errors, [])
        self.assertIsNone(self.daemon.poll(), "sqlbakd died")
        self.status_ok()

    def test_oversized_lines_are_refused(self):
        for size in ((1 << 20) + 1, 3 << 20):
            reply = self.exchange(b"x" * size + b"\n")
            obj = json.loads(reply.split(b"\n")[0])
            self.assertFalse(obj["ok"])
            self.assertIn("longer than", obj["error"]["message"])
        self.status_ok()

    def test_a_silent_client_does_not_block_others(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        self.addCleanup(s.close)
        self.status_ok()   # served while the silent one waits
        s.settimeout(60)
        self.assertEqual(s.recv(10), b"", "a silent client is disconnected")

    def test_request_ids_are_echoed(self):
        reply = self.exchange(json.dumps({"v": 1, "id": 4242, "command": "status"}).encode() + b"\n")
        obj = json.loads(reply.split(b"\n")[0])
        self.assertTrue(obj["ok"])
        self.assertEqual(obj["id"], 4242)


if __name__ == "__main__":
    unittest.main(verbosity=2)
