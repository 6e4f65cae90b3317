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

    def write_alerts(self, email_url, on, repeat_after="1h"):
        text = self.env.config_text()
        text += ("alerts:\n"
                 "  email: {url: %s, from: sqlbak@test.invalid, to: [ops@test.invalid], on: %s}\n"
                 "  webhook: {url: %s, on: %s}\n"
                 "  repeat_after: %s\n") % (json.dumps(email_url), on, json.dumps(self.hook.url()), on,
                                            repeat_after)
        self.env.write_config(text)

    def webhook_events(self, kind):
        return [b for b in self.hook.bodies() if b.get("event") == kind]

    def test_failure_folding_and_health_changes(self):
        self.small_db("shop")
        self.env.add_database("gone", self.env.path("does-not-exist.db"))
        # A short folding window, so that the count of folded alerts is seen in
        # the next one without waiting an hour.
        self.write_alerts(self.smtp.url, "[failure, health]", repeat_after="4s")
        d = self.start_daemon()
        # The first health look sets the baseline without alerting.
        d.wait_log(r"health of 'shop' is CRITICAL", timeout=60)

        started = time.monotonic()
        for _ in range(10):
            rc, out, err = d.ctl("backup", "--wait", "gone", check=1)
            self.assertIn("gone", err)
        failures = wait_until(lambda: self.webhook_events("failure"), "a failure webhook")
        self.smtp.wait_messages(1)
        failures = self.webhook_events("failure")
        if time.monotonic() - started < 4:
            # Ten identical failures within repeat_after: one alert, not ten.
            self.assertEqual(len(failures), 1, failures)
        folded_so_far = len(failures)
        # After the window, the next failure is sent with the count of those folded.
        time.sleep(4.5)
        d.ctl("backup", "--wait", "gone", check=1)
        later = wait_until(lambda: self.webhook_events("failure")[folded_so_far:], "the next failure webhook")
        self.assertEqual(sum(f["folded"] for f in self.webhook_events("failure")), 10 - folded_so_far + 0,
                         self.webhook_events("failure"))
        self.assertGreater(later[-1]["folded"], 0, later)
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
