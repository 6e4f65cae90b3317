#!/usr/bin/env python3
"""sqlbakd speaks up: failed backups reach an SMTP server (aiosmtpd) and a webhook,
repeated identical failures are folded into one, health changes are announced both
ways, and a dead alert channel neither delays backups nor goes unnoticed (status
and health show it). No password ever appears in status or the log.
"""

import json
import os
import time

import sqlbaktest as T

try:
    import smtp_peer as P
except Exception as e:  # noqa: BLE001 - reported as a skip below
    P = None
    IMPORT_ERROR = str(e)


def wait_until(predicate, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


class DaemonAlerts(T.DaemonTestCase):

    def setUp(self):
        super().setUp()
        if P is None or getattr(P, "Controller", None) is None:
            self.skipTest("aiosmtpd is not installed (python3-aiosmtpd)")
        self.smtp = P.SmtpPeer()
        self.addCleanup(self.smtp.stop)
        self.hook = P.WebhookPeer()
        self.addCleanup(self.hook.stop)
        self.password = "s3cret-pass-%d" % self.rng.randrange(1 << 30)
        pw = self.env.path("smtp.pw")
        with open(pw, "w") as f:
            f.write(self.password + "\n")

    def write_alerts(self, email_url, on):
        text = self.env.config_text()
        text += ("alerts:\n"
                 "  email: {url: %s, from: sqlbak@test.invalid, to: [ops@test.invalid], on: %s}\n"
                 "  webhook: {url: %s, on: %s}\n"
                 "  repeat_after: 1h\n") % (json.dumps(email_url), on, json.dumps(self.hook.url()), on)
        self.env.write_config(text)

    def webhook_events(self, kind):
        return [b for b in self.hook.bodies() if b.get("event") == kind]

    def test_failure_folding_and_health_changes(self):
        self.small_db("shop")
        self.env.add_database("gone", self.env.path("does-not-exist.db"))
        self.write_alerts(self.smtp.url, "[failure, health]")
        d = self.start_daemon()
        # The first health look sets the baseline without alerting.
        d.wait_log(r"health of 'shop' is CRITICAL", timeout=60)

        for _ in range(4):
            rc, out, err = d.ctl("backup", "--wait", "gone", check=1)
            self.assertIn("gone", err)
        failures = wait_until(lambda: self.webhook_events("failure"), "a failure webhook")
        self.smtp.wait_messages(1)
        # Identical failures within repeat_after: one alert, not four.
        time.sleep(1)
        failures = self.webhook_events("failure")
        self.assertEqual(len(failures), 1, failures)
        self.assertEqual(failures[0]["database"], "gone")
        self.assertEqual(failures[0]["job"], "backup")
        self.assertIn("does-not-exist.db", failures[0]["error"])
        mail = self.smtp.received()[0].message()
        self.assertIn("gone", mail["Subject"])

        # shop goes from CRITICAL (no backup) to OK: announced.
        d.ctl("backup", "--wait", "shop", check=0)
        health = wait_until(lambda: [e for e in self.webhook_events("health") if e["database"] == "shop"],
                            "a health webhook for shop")
        self.assertEqual(health[0]["health"], {"old": "CRITICAL", "new": "OK"})
        d.stop()

    def test_dead_channel_does_not_delay_backups_and_shows(self):
        self.small_db("shop")
        refusing = P.RefusingPort()
        self.addCleanup(refusing.close)
        url = "smtp://sqlbak:%s@127.0.0.1:%d" % (self.password, refusing.port)
        self.write_alerts(url, "[failure, success]")
        d = self.start_daemon()
        doc = d.ctl_json("backup", "--wait", "shop", check=0)
        self.assertEqual(doc["errors"], [])
        # The success went to the webhook while the email channel kept failing.
        wait_until(lambda: self.webhook_events("success"), "a success webhook")

        def email_failing():
            st = d.ctl_json("status", check=0)
            return [c for c in st.get("alerts", []) if c["channel"] == "email" and c["consecutive_failures"] > 0]
        channel = wait_until(email_failing, "the email channel to show as failing")[0]
        self.assertNotIn(self.password, json.dumps(d.ctl_json("status", check=0)))
        self.assertIn("127.0.0.1:%d" % refusing.port, channel["url"])
        rc, out, err = d.ctl("health", check=None)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("alert channel email", out)
        self.assertNotIn(self.password, out + err)
        d.stop()
        self.assertNotIn(self.password, d.log())


if __name__ == "__main__":
    T.main()
