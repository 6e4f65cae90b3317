#!/usr/bin/env python3
"""`sqlbakctl alert test` against a real SMTP server (aiosmtpd) and a webhook receiver.

Each test starts its peers on free loopback ports (smtp_peer.py), writes an `alerts:`
section into the config, runs `sqlbakctl -c CONFIG alert test`, and checks what the
peers received: the email parsed by Python's `email` package (headers, recipients,
both alternative parts), the webhook's JSON document, the retries, the errors a
failing channel produces, and that no password or token is ever printed.

TLS: the STARTTLS and SMTPS peers use a self-signed certificate made here with
`openssl req`; sqlbakctl is told to trust it through SSL_CERT_FILE (read by sqlbak's
alert delivery like OpenSSL and curl(1) read it). Without that variable the same
delivery must fail on the certificate: verification is on.
"""

import datetime
import email.utils
import json
import os
import socket
import sys
import time
import unittest

import sqlbaktest as T
import smtp_peer

PASSWORD = "pw-Zq8-do-not-print"
TOKEN = "tok-Hx3-do-not-print"
USER = "sqlbak-alerts"

WEBHOOK_FIELDS = {"version", "event", "severity", "summary", "message", "host", "database", "target",
                  "backup_id", "job", "error", "details", "health", "time", "time_unix_ms", "folded",
                  "folded_since", "next_steps"}


def yaml_map(d, indent):
    return "".join("%s%s: %s\n" % (" " * indent, k, json.dumps(v)) for k, v in d.items())


class AlertTest(T.EnvTestCase):

    def setUp(self):
        if smtp_peer.SKIP_REASON:
            self.skipTest(smtp_peer.SKIP_REASON)
        super().setUp()
        self.password_file = self.env.path("smtp.password")
        with open(self.password_file, "w") as f:
            f.write(PASSWORD + "\n")
        self.token_file = self.env.path("webhook.token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.password_file, 0o600)
        os.chmod(self.token_file, 0o600)

    # --- helpers ------------------------------------------------------------------------

    def smtp(self, **kw):
        peer = smtp_peer.SmtpPeer(mailbox=self.env.path("mailbox"), **kw)
        self.addCleanup(peer.stop)
        return peer

    def webhook(self, **kw):
        peer = smtp_peer.WebhookPeer(**kw)
        self.addCleanup(peer.stop)
        return peer

    def cert(self):
        if not hasattr(self, "_cert"):
            self._cert = smtp_peer.make_self_signed_cert(self.env.root)
        if self._cert is None:
            self.skipTest("openssl is not installed")
        return self._cert

    def refusing_port(self):
        p = smtp_peer.RefusingPort()
        self.addCleanup(p.close)
        return p.port

    def email_config(self, url, auth=True, **extra):
        c = {"url": url, "from": "sqlbak <sqlbak@example.com>",
             "to": ["ops@example.com", "oncall@example.org"]}
        if auth:
            c.update(username=USER, password_file=self.password_file)
        c.update(extra)
        return c

    def configure(self, email=None, webhook=None):
        text = self.env.config_text()
        if email or webhook:
            text += "alerts:\n"
            if email:
                text += "  email:\n" + yaml_map(email, 4)
            if webhook:
                text += "  webhook:\n" + yaml_map(webhook, 4)
            text += "  repeat_after: 1h\n"
        self.env.write_config(text)
        T.run_ctl(["config", "check", self.env.config], check=0)

    def alert_test(self, json_out=False, ca=None, expect=None):
        """Runs `sqlbakctl -c CONFIG [--json] alert test`; returns (rc, out, err)."""
        env = dict(os.environ)
        env.pop("SSL_CERT_FILE", None)
        if ca:
            env["SSL_CERT_FILE"] = ca
        args = ["-c", self.env.config] + (["--json"] if json_out else []) + ["alert", "test"]
        rc, out, err = T.run_ctl(args, env=env, timeout=300)
        T.assert_no_crash(rc, out, err, [T.SQLBAKCTL] + args)
        for secret in (PASSWORD, TOKEN):
            self.assertNotIn(secret, out + err, "a secret was printed\n" + T.describe(args, rc, out, err))
        if expect is not None:
            self.assertEqual(rc, expect, T.describe(args, rc, out, err))
        return rc, out, err

    def alert_test_json(self, expect, ca=None):
        rc, out, err = self.alert_test(json_out=True, ca=ca, expect=expect)
        doc = json.loads(out)
        return {r["channel"]: r for r in doc["results"]}, err

    def check_test_email(self, mail, tls=False, login=USER):
        self.assertEqual(mail.mail_from, "sqlbak@example.com")
        self.assertEqual(sorted(mail.rcpt_tos), ["oncall@example.org", "ops@example.com"])
        self.assertEqual(mail.tls, tls)
        self.assertEqual(mail.login, login)
        self.assertNotIn(PASSWORD.encode(), mail.data)
        msg = mail.message()
        self.assertEqual(msg.defects, [])
        # RFC 5322 headers
        for h in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version"):
            self.assertIsNotNone(msg[h], "header %s missing\n%s" % (h, mail.data[:2000]))
        when = email.utils.parsedate_to_datetime(msg["Date"])
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()), 600)
        self.assertRegex(msg["Message-ID"], r"^<[^<>@\s]+@[^<>@\s]+>$")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "sqlbak@example.com")
        self.assertEqual(sorted(a.addr_spec for a in msg["To"].addresses),
                         ["oncall@example.org", "ops@example.com"])
        self.assertEqual(msg["MIME-Version"], "1.0")
        host = socket.gethostname()
        self.assertIn("test alert", msg["Subject"])
        self.assertIn(host, msg["Subject"])
        # multipart/alternative: text/plain and text/html, both UTF-8
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        parts = {p.get_content_type(): p for p in msg.iter_parts()}
        self.assertEqual(sorted(parts), ["text/html", "text/plain"])
        for p in parts.values():
            self.assertEqual(p.get_content_charset(), "utf-8")
            body = p.get_content()
            self.assertIn(host, body)
            self.assertIn("sqlbakctl alert test", body)   # what to do next
            self.assertIn(self.env.config, body)
        self.assertIn("<html>", parts["text/html"].get_content())
        return msg

    def check_test_webhook(self, request, token=True):
        self.assertEqual(request["method"], "POST")
        self.assertEqual(request["path"], "/hook")
        headers = {k.lower(): v for k, v in request["headers"].items()}
        self.assertEqual(headers.get("content-type"), "application/json")
        if token:
            self.assertEqual(headers.get("authorization"), "Bearer " + TOKEN)
        else:
            self.assertNotIn("authorization", headers)
        doc = json.loads(request["body"])
        self.assertEqual(set(doc), WEBHOOK_FIELDS)
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["event"], "test")
        self.assertEqual(doc["severity"], "info")
        self.assertEqual(doc["host"], socket.gethostname())
        for k in ("database", "target", "backup_id", "job", "error", "health", "folded_since"):
            self.assertIsNone(doc[k], k)
        self.assertEqual(doc["folded"], 0)
        self.assertIn(self.env.config, doc["details"])
        self.assertEqual(doc["next_steps"], ["sqlbakctl alert test"])
        t = T.parse_time(doc["time"])
        self.assertLess(abs(time.time() - t.timestamp()), 600)
        self.assertEqual(doc["time_unix_ms"] // 1000, int(t.timestamp()))
        return doc

    # --- tests --------------------------------------------------------------------------

    def test_email_and_webhook_are_delivered(self):
        smtp = self.smtp(auth=(USER, PASSWORD))
        hook = self.webhook()
        self.configure(email=self.email_config(smtp.url),
                       webhook={"url": hook.url(), "token_file": self.token_file})
        rc, out, err = self.alert_test(expect=0)
        self.assertRegex(out, r"email\s+smtp://127\.0\.0\.1:%d\s+delivered \(1 attempt" % smtp.port)
        self.assertRegex(out, r"webhook\s+%s\s+delivered \(1 attempt" % hook.url())
        self.assertEqual(err.strip(), "")
        [mail] = smtp.wait_messages(1)
        self.check_test_email(mail)
        [request] = hook.wait_requests(1)
        self.check_test_webhook(request)
        self.assertEqual(len(os.listdir(self.env.path("mailbox"))), 1)

        # --json: one document, a result per channel
        results, err = self.alert_test_json(expect=0)
        self.assertEqual(set(results), {"email", "webhook"})
        for r in results.values():
            self.assertIs(r["ok"], True)
            self.assertIsNone(r["error"])
            self.assertEqual(r["attempts"], 1)
        self.assertEqual(results["email"]["url"], smtp.url)
        self.assertEqual(len(smtp.wait_messages(2)), 2)

    def test_email_without_auth_and_webhook_without_token(self):
        smtp = self.smtp()
        hook = self.webhook()
        self.configure(email=self.email_config(smtp.url, auth=False), webhook={"url": hook.url()})
        self.alert_test(expect=0)
        self.check_test_email(smtp.wait_messages(1)[0], login=None)
        self.check_test_webhook(hook.wait_requests(1)[0], token=False)

    def test_webhook_500_is_retried(self):
        hook = self.webhook(fail_first=2)
        self.configure(webhook={"url": hook.url(), "token_file": self.token_file})
        results, _ = self.alert_test_json(expect=0)
        self.assertIs(results["webhook"]["ok"], True)
        self.assertEqual(results["webhook"]["attempts"], 3)
        reqs = hook.wait_requests(3)
        self.assertEqual(len(reqs), 3)
        self.assertEqual(len({r["body"] for r in reqs}), 1, "a retry sends the same document")

    def test_webhook_that_keeps_failing(self):
        hook = self.webhook(fail_first=100)
        self.configure(webhook={"url": hook.url(), "token_file": self.token_file})
        rc, out, err = self.alert_test(expect=1)
        self.assertClearError(rc, out, err, expected_rc=1,
                              names=["webhook", hook.url(), "HTTP 500", "3 attempts"])
        self.assertEqual(len(hook.received()), 3)

    def test_unreachable_channels_are_reported(self):
        smtp_port, hook_port = self.refusing_port(), self.refusing_port()
        self.configure(email=self.email_config("smtp://127.0.0.1:%d" % smtp_port),
                       webhook={"url": "http://127.0.0.1:%d/hook" % hook_port})
        start = time.monotonic()
        rc, out, err = self.alert_test(expect=1)
        self.assertLess(time.monotonic() - start, 60)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 2, err)
        self.assertIn("email smtp://127.0.0.1:%d" % smtp_port, lines[0])
        self.assertIn("webhook http://127.0.0.1:%d/hook" % hook_port, lines[1])
        for line in lines:
            self.assertIn("cannot connect", line)
            self.assertIn("not delivered after 3 attempts", line)
        self.assertIn("FAILED", out)
        results, _ = self.alert_test_json(expect=1)
        self.assertEqual({r["ok"] for r in results.values()}, {False})
        self.assertIn("cannot connect", results["email"]["error"])

    def test_one_failing_channel_fails_the_command(self):
        smtp = self.smtp()
        self.configure(email=self.email_config(smtp.url, auth=False),
                       webhook={"url": "http://127.0.0.1:%d/hook" % self.refusing_port()})
        results, err = self.alert_test_json(expect=1)
        self.assertIs(results["email"]["ok"], True)
        self.assertIs(results["webhook"]["ok"], False)
        self.assertEqual(len(smtp.wait_messages(1)), 1)
        self.assertNotIn("email", err)

    def test_wrong_password_is_not_retried_and_not_printed(self):
        smtp = self.smtp(auth=(USER, "another-password"))
        self.configure(email=self.email_config(smtp.url))
        rc, out, err = self.alert_test(expect=1)
        self.assertClearError(rc, out, err, expected_rc=1, names=["email", smtp.url], words=["login denied"])
        results, _ = self.alert_test_json(expect=1)
        self.assertEqual(results["email"]["attempts"], 1)
        self.assertEqual(smtp.received(), [])
        self.assertGreaterEqual(smtp.auth_failures, 1)

    def test_starttls_required_and_verified(self):
        cert, _key = self.cert()
        smtp = self.smtp(mode="starttls", cert=self.cert(), auth=(USER, PASSWORD))
        self.configure(email=self.email_config(smtp.url, starttls=True))
        self.alert_test(ca=cert, expect=0)
        self.check_test_email(smtp.wait_messages(1)[0], tls=True)
        # The certificate is checked: without the CA it is refused, nothing is sent.
        rc, out, err = self.alert_test(expect=1)
        self.assertClearError(rc, out, err, expected_rc=1, names=["email", smtp.url], words=["certificate"])
        self.assertEqual(len(smtp.received()), 1)

    def test_starttls_true_against_a_server_without_starttls(self):
        smtp = self.smtp(auth=(USER, PASSWORD))
        self.configure(email=self.email_config(smtp.url, starttls=True))
        rc, out, err = self.alert_test(expect=1)
        self.assertClearError(rc, out, err, expected_rc=1, names=["email", smtp.url, "STARTTLS"],
                              words=["does not offer"])
        self.assertEqual(smtp.received(), [])

    def test_smtps(self):
        cert, _key = self.cert()
        smtp = self.smtp(mode="smtps", cert=self.cert(), auth=(USER, PASSWORD))
        self.assertTrue(smtp.url.startswith("smtps://"))
        self.configure(email=self.email_config(smtp.url))
        self.alert_test(ca=cert, expect=0)
        self.check_test_email(smtp.wait_messages(1)[0], tls=True)

    def test_credentials_in_urls_are_not_printed(self):
        hook = self.webhook()
        url = "http://someone:urlpass-Pq7@127.0.0.1:%d/hook?secret=query-Kd2" % hook.port
        self.configure(webhook={"url": url})
        rc, out, err = self.alert_test(expect=0)
        rc, jout, jerr = self.alert_test(json_out=True, expect=0)
        for text in (out, err, jout, jerr):
            self.assertNotIn("urlpass-Pq7", text)
            self.assertNotIn("query-Kd2", text)
        self.assertIn("http://127.0.0.1:%d/hook" % hook.port, out)

    def test_no_channel_configured(self):
        self.configure()
        rc, out, err = self.alert_test()
        self.assertClearError(rc, out, err, expected_rc=2, names=[self.env.config], words=["no alert channel"])
        results, _ = self.alert_test_json(expect=2)
        self.assertEqual(results, {})


if __name__ == "__main__":
    sys.path.insert(0, T.HERE)
    T.main()
