"""S3 peers for the integration tests: s3rver, a fault-injecting proxy, awscli.

S3Server starts s3rver (from the npm registry, installed under $SQLBAK_PEERS_DIR by
scripts/install-deps.sh) on a free loopback port with a data directory of its own,
and stops it. s3rver accepts any SigV4 signature from access key id "S3RVER"; it
does not check signatures, so FaultProxy can check them instead (verify_sigv4):
every request sqlbak sends is then signed as AWS itself would check it.

FaultProxy sits between sqlbak and s3rver. For each request it asks its plan what
to do: pass it on, answer with an error status, drop the connection without an
answer, or pass it on and cut the answer's body in the middle. It counts requests
by kind and the bytes of request and response bodies.

Standard library only.
"""

import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

ACCESS_KEY_ID = "S3RVER"  # s3rver's built-in account
SECRET_ACCESS_KEY = "S3RVER"
REGION = "us-east-1"


def s3rver_path():
    peers = os.environ.get("SQLBAK_PEERS_DIR") or os.path.join(SOURCE_ROOT, "tests", "peers")
    return os.path.join(peers, "node_modules", ".bin", "s3rver")


def available():
    """None when s3rver can run here, else the reason it cannot."""
    path = s3rver_path()
    if not os.path.exists(path):
        return "s3rver not installed at %s (run scripts/install-deps.sh)" % path
    if shutil.which("node") is None:
        return "node is not installed"
    return None


def free_port():
    """A loopback port with nothing listening on it (for 'server down')."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class S3Server:
    """s3rver on 127.0.0.1:<free port>, data in ROOT/s3rver, with BUCKETS created."""

    def __init__(self, root, buckets=("sqlbak-it",), timeout=60):
        self.dir = os.path.join(root, "s3rver")
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(root, "s3rver.log")
        args = [s3rver_path(), "-d", self.dir, "-a", "127.0.0.1", "-p", "0"]
        for b in buckets:
            args += ["--configure-bucket", b]
        env = dict(os.environ)
        # s3rver encrypts its ListObjectsV2 continuation tokens with DES, which
        # OpenSSL 3 (Node 17 and later) keeps in its legacy provider: without it
        # every truncated listing is a 500.
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self._log.close()
        deadline = time.monotonic() + timeout
        self.port = None
        while self.port is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("s3rver did not start:\n" + self.log()[-4000:])
            time.sleep(0.05)
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def objects(self, bucket, prefix=""):
        """{key: size} of the objects s3rver holds (read from its data directory)."""
        out = {}
        base = os.path.join(self.dir, bucket)
        suffix = "._S3rver_object"
        for dirpath, _dirs, names in os.walk(base):
            for n in names:
                if not n.endswith(suffix):
                    continue
                key = os.path.relpath(os.path.join(dirpath, n[:-len(suffix)]), base)
                if key.startswith(prefix):
                    out[key] = os.path.getsize(os.path.join(dirpath, n))
        return out


# --- SigV4, as AWS checks it ---------------------------------------------------------

def _uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def sigv4_problem(method, raw_path, headers, body, secret):
    """None when the request's AWS4-HMAC-SHA256 signature, payload hash and
    Content-MD5 are right; otherwise what is wrong. HEADERS: {lower name: value}."""
    auth = headers.get("authorization", "")
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                 r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$", auth)
    if not m:
        return "malformed Authorization header %r" % auth[:60]
    _key, date, region, service, signed, signature = m.groups()
    if service != "s3":
        return "service %r, not s3" % service
    payload = headers.get("x-amz-content-sha256")
    if payload is None:
        return "no x-amz-content-sha256"
    if payload != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the SHA-256 of the body"
    if "content-md5" in headers:
        import base64
        if headers["content-md5"] != base64.b64encode(hashlib.md5(body).digest()).decode():
            return "Content-MD5 is not the MD5 of the body"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "x-amz-date %r does not match the credential date" % amz_date
    path, _, query = raw_path.partition("?")
    # S3 does not normalise the path: the canonical URI is the path as sent,
    # which must already be encoded.
    if _uri_encode(urllib.parse.unquote(path), True) != path:
        return "path %r is not canonically encoded" % path
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    cq = "&".join("%s=%s" % kv for kv in sorted(
        (_uri_encode(k, False), _uri_encode(v, False)) for k, v in params))
    names = signed.split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in names:
            return "%s is not signed" % required
    for n in names:
        if n not in headers:
            return "signed header %r was not sent" % n
    ch = "".join("%s:%s\n" % (n, " ".join(headers[n].split())) for n in names)
    creq = "\n".join([method, path, cq, ch, signed, payload])
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if want != signature:
        return "signature does not match; canonical request was:\n" + creq
    return None


# --- the fault-injecting proxy ---------------------------------------------------------

def classify(method, raw_path):
    """'put', 'get', 'list', 'delete', 'multipart' (start, part, complete, abort)."""
    path, _, query = raw_path.partition("?")
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    if "uploads" in q or "uploadId" in q:
        return "multipart"
    if method == "POST" and "delete" in q:
        return "delete"
    if method == "GET" and path.rstrip("/").count("/") <= 1:
        return "list"
    return {"GET": "get", "HEAD": "get", "PUT": "put", "DELETE": "delete"}.get(method, method.lower())


class Request:
    """What a plan sees: n (1-based, over the proxy's life), method, path, query, kind, key."""

    def __init__(self, n, method, raw_path, bucket, headers=None):
        self.n = n
        self.headers = headers or {}  # lower-case names
        self.body = None  # kept for lock objects only
        self.action = None
        self.status = None
        self.method = method
        self.raw_path = raw_path
        self.path, _, self.query = raw_path.partition("?")
        self.kind = classify(method, raw_path)
        p = urllib.parse.unquote(self.path).lstrip("/")
        self.key = p[len(bucket) + 1:] if p.startswith(bucket + "/") else ""


PASS = ("pass",)


def error(status, code="ServiceUnavailable", message="injected by the test proxy"):
    return ("status", status, code, message)


DROP = ("drop",)   # close the connection without answering


def cut(fraction=0.5):  # pass on, then send only FRACTION of the answer's body
    return ("cut", fraction)


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1:<free port> in front of UPSTREAM_PORT.

    plan(request) -> PASS | error(...) | DROP | cut(...); may be replaced at any time.
    verify_sigv4: answer 403 SignatureDoesNotMatch to a request signed wrongly
    (and record it in self.bad_signatures).
    """

    def __init__(self, upstream_port, bucket, plan=None, verify_sigv4=False):
        self.upstream_port = upstream_port
        self.bucket = bucket
        self.plan = plan or (lambda r: PASS)
        self.verify_sigv4 = verify_sigv4
        self.lock = threading.Lock()
        self.requests = []        # every Request, with .action and .status filled in
        self.counts = {}          # kind -> requests
        self.bytes_in = 0         # request bodies received
        self.bytes_out = 0        # response bodies sent
        self.bad_signatures = []
        self._n = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle_one(self):
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def reset_counts(self):
        with self.lock:
            self.counts = {}
            self.bytes_in = 0
            self.bytes_out = 0
            self.requests = []

    def _record(self, req, action, status):
        req.action = action
        req.status = status
        with self.lock:
            self.requests.append(req)

    def seen(self, pred=lambda r: True):
        """The requests answered so far for which PRED(request) is true."""
        with self.lock:
            return [r for r in self.requests if pred(r)]

    def _handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.lock:
            self._n += 1
            req = Request(self._n, h.command, h.path, self.bucket, headers)
            if "/locks/" in req.path:
                req.body = body  # lock records are small; tests read them
            self.counts[req.kind] = self.counts.get(req.kind, 0) + 1
            self.bytes_in += len(body)
        if self.verify_sigv4:
            problem = sigv4_problem(h.command, h.path, headers, body, SECRET_ACCESS_KEY)
            if problem:
                with self.lock:
                    self.bad_signatures.append("%s %s: %s" % (h.command, h.path, problem))
                self._send_error(h, req, ("status", 403, "SignatureDoesNotMatch", problem.splitlines()[0]))
                return
        action = self.plan(req) or PASS
        if action[0] == "status":
            self._send_error(h, req, action)
            return
        if action[0] == "drop":
            self._record(req, "drop", 0)
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        # Pass it on.
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            fwd = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("connection", "keep-alive", "proxy-connection", "expect")}
            conn.request(h.command, h.path, body=body if body or h.command in ("PUT", "POST") else None,
                         headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            rheaders = [(k, v) for k, v in resp.getheaders()
                        if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                             "content-length")]
            status = resp.status
            upstream_length = resp.getheader("Content-Length")
        finally:
            conn.close()
        h.send_response_only(status, resp.reason)
        for k, v in rheaders:
            h.send_header(k, v)
        if h.command == "HEAD":
            h.send_header("Content-Length", upstream_length or "0")
            h.end_headers()
            self._record(req, "pass", status)
            return
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if action[0] == "cut" and len(data) > 1:
            part = data[:max(1, int(len(data) * action[1]))]
            h.wfile.write(part)
            h.wfile.flush()
            with self.lock:
                self.bytes_out += len(part)
            self._record(req, "cut", status)
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        h.wfile.write(data)
        with self.lock:
            self.bytes_out += len(data)
        self._record(req, "pass", status)

    def _send_error(self, h, req, action):
        _, status, code, message = action
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>proxy</RequestId></Error>" % (code, message.replace("&", "&amp;")
                                                          .replace("<", "&lt;"))).encode()
        h.send_response_only(status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
        self._record(req, "status %d" % status, status)


# --- awscli, the independent client ----------------------------------------------------

def aws_path():
    return shutil.which("aws")


def aws(endpoint, *args, check=True, timeout=300):
    """Runs `aws --endpoint-url ENDPOINT ARGS` with s3rver's credentials; returns stdout."""
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # Newer botocore sends aws-chunked bodies with CRC trailers, which s3rver
        # would store verbatim: ask for plain bodies.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    })
    cmd = [aws_path(), "--endpoint-url", endpoint] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("aws failed (exit %d): %s\n%s\n%s" % (
            p.returncode, " ".join(cmd), p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def aws_ls(endpoint, bucket, prefix):
    """{key below PREFIX: size} as `aws s3 ls --recursive` sees it."""
    out = aws(endpoint, "s3", "ls", "--recursive", "s3://%s/%s" % (bucket, prefix))
    objects = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            key = parts[3]
            objects[key[len(prefix):] if key.startswith(prefix) else key] = int(parts[2])
    return objects


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)
