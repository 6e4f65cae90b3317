#include "daemon/dashboard_page.h"

#include "lib/sha256.h"

namespace sqlbak::daemon {
namespace {

// The page. Its script builds every element from data with createElement and
// textContent (never innerHTML), so a database path such as
// "<img src=x onerror=...>" is shown as text.
constexpr std::string_view kPage = R"page(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>sqlbak</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f6f7f9; --fg: #1d232b; --muted: #66707c; --card: #ffffff; --line: #dde1e6;
  --ok: #1f8a4c; --warning: #b86e00; --critical: #c62828; --unknown: #6b6f76;
  --bar: #5b8def; --curve: #e0762b;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #15181c; --fg: #e4e7eb; --muted: #98a1ac; --card: #1e2227; --line: #333a42;
          --bar: #6d9bff; --curve: #ff9a4d; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1rem;
         padding: .8rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { margin: 0; font-size: 1.3rem; }
#meta { color: var(--muted); font-size: .85rem; }
main { max-width: 75rem; margin: 0 auto; padding: .5rem 1rem 2rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .6rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: .8rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem;
        border-left-width: 5px; min-width: 0; }
.card.ok { border-left-color: var(--ok); }
.card.warning { border-left-color: var(--warning); }
.card.critical { border-left-color: var(--critical); }
.card.unknown { border-left-color: var(--unknown); }
.card h3 { margin: 0 0 .3rem; font-size: 1rem; display: flex; justify-content: space-between; gap: .5rem; }
.card dl { margin: .3rem 0 0; display: grid; grid-template-columns: max-content 1fr; gap: .1rem .6rem;
           font-size: .88rem; }
.card dt { color: var(--muted); }
.card dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.path, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .82rem;
               overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .78rem; font-weight: 600;
         color: #fff; background: var(--unknown); white-space: nowrap; }
.badge.ok { background: var(--ok); } .badge.warning { background: var(--warning); }
.badge.critical { background: var(--critical); } .badge.unknown { background: var(--unknown); }
.error { color: var(--critical); overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.banner { background: var(--card); border: 1px solid var(--critical); border-radius: 8px; padding: .6rem .8rem;
          margin-top: .8rem; }
.progress { height: .6rem; background: var(--line); border-radius: 999px; overflow: hidden; margin: .3rem 0; }
.progress > div { height: 100%; width: 0; background: var(--bar); transition: width .4s; }
.job { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem;
       margin-bottom: .5rem; }
.scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .86rem; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; }
tr:last-child td { border-bottom: 0; }
th { color: var(--muted); font-weight: 600; }
.chart { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem; }
.chart svg { width: 100%; height: auto; display: block; }
.chart text { fill: var(--muted); font-size: 11px; }
.chart .bar { fill: var(--bar); }
.chart .fail { fill: var(--critical); }
.chart .curve { fill: none; stroke: var(--curve); stroke-width: 2; }
.chart .dot { fill: var(--curve); }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: .2rem 1rem; font-size: .82rem; color: var(--muted); margin-top: .3rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .3rem;
          vertical-align: -1px; }
.swatch.bar { background: var(--bar); } .swatch.curve { background: var(--curve); }
.swatch.fail { background: var(--critical); }
ul.findings { padding-left: 1.2rem; margin: 0; }
form { display: flex; gap: .5rem; flex-wrap: wrap; }
input { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; min-width: 14rem;
        background: var(--bg); color: var(--fg); }
button { font: inherit; padding: .35rem .8rem; border-radius: 6px; border: 1px solid var(--line);
         background: var(--bar); color: #fff; cursor: pointer; }
@media (max-width: 40rem) {
  body { font-size: 14px; }
  main { padding: .3rem .6rem 1.5rem; }
  .opt { display: none; }
  input { min-width: 0; flex: 1; }
}
</style>
</head>
<body>
<header>
  <h1>sqlbak</h1>
  <span id="overall" class="badge unknown">…</span>
  <span id="meta">connecting…</span>
</header>
<main>
  <section id="auth" class="banner" hidden>
    <h2>Token required</h2>
    <p id="auth-message">This sqlbakd asks for a bearer token (the contents of its <span class="mono">http.token_file</span>).
       It is kept in this browser tab only.</p>
    <form id="auth-form">
      <input id="token" type="password" autocomplete="off" placeholder="token" aria-label="token">
      <button type="submit">Use token</button>
    </form>
  </section>
  <div id="error" class="banner error" hidden></div>
  <section>
    <h2>Databases</h2>
    <div id="databases" class="cards"><p class="muted">Loading…</p></div>
  </section>
  <section>
    <h2>Running jobs</h2>
    <div id="jobs"><p class="muted">Loading…</p></div>
  </section>
  <section>
    <h2>Last 30 days</h2>
    <div id="chart" class="chart"><p class="muted">Loading…</p></div>
  </section>
  <section>
    <h2>Latest backups</h2>
    <div id="backups" class="scroll"><p class="muted">Loading…</p></div>
  </section>
  <section>
    <h2>Health</h2>
    <div id="health"><p class="muted">Loading…</p></div>
  </section>
</main>
<script>
"use strict";
(function () {
  const TOKEN_KEY = "sqlbak.http.token";
  const FAST_MS = 2000, IDLE_MS = 10000, SLOW_MS = 30000, MAX_BACKUPS = 25;
  let fastTimer = null, slowTimer = null, lastSeen = "", waitingForToken = false;

  // ---- helpers: every string from data goes through text nodes ----
  function el(tag, cls, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function byId(id) { return document.getElementById(id); }
  function replace(id, ...children) { byId(id).replaceChildren(...children.filter((c) => c)); }
  function str(v) { return v === null || v === undefined ? "" : String(v); }

  function bytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0, v = Math.abs(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (n < 0 ? "-" : "") + (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
  }
  function duration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "–";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    if (m < 60) return m + " min " + r + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function when(iso) {
    if (!iso) return "–";
    const t = Date.parse(iso);
    if (isNaN(t)) return str(iso);
    const d = new Date(t), p = (x) => String(x).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" +
           p(d.getMinutes());
  }
  function ago(iso) {
    const t = Date.parse(iso || "");
    if (isNaN(t)) return "";
    let s = Math.round((Date.now() - t) / 1000);
    const future = s < 0;
    s = Math.abs(s);
    const text = s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" :
                 s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " days";
    return future ? "in " + text : text + " ago";
  }
  function stateClass(state) {
    const s = str(state).toLowerCase();
    return ["ok", "warning", "critical", "unknown"].includes(s) ? s : "unknown";
  }
  function badge(state) { return el("span", "badge " + stateClass(state), state ? str(state) : "…"); }
  function progressBar(done, total) {
    const fill = el("div");
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    fill.style.width = (ratio * 100).toFixed(1) + "%";
    const bar = el("div", "progress", fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(Math.round(ratio * 100)));
    return bar;
  }

  // ---- the API ----
  class AuthError extends Error {}
  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
  async function api(path) {
    const headers = { "Accept": "application/json" };
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    const r = await fetch(path, { headers: headers, cache: "no-store", credentials: "omit" });
    if (r.status === 401) throw new AuthError(t ? "The token was refused." : "");
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const message = body && body.error && body.error.message ? body.error.message : "HTTP " + r.status;
      throw new Error(message);
    }
    return body;
  }

  function askForToken(message) {
    waitingForToken = true;
    clearTimeout(fastTimer);
    clearTimeout(slowTimer);
    byId("auth").hidden = false;
    if (message) byId("auth-message").textContent = message + " Enter the token again.";
    byId("meta").textContent = "waiting for a token";
  }
  byId("auth-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    const value = byId("token").value.trim();
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode: lost on reload */ }
    byId("token").value = "";
    byId("auth").hidden = true;
    waitingForToken = false;
    refreshFast();
    refreshSlow();
  });

  function showError(e) {
    if (e instanceof AuthError) {
      try { if (e.message) sessionStorage.removeItem(TOKEN_KEY); } catch (x) { /* ignore */ }
      askForToken(e.message);
      return true;
    }
    const box = byId("error");
    box.hidden = false;
    box.textContent = "Cannot read from sqlbakd: " + str(e && e.message) + " (retrying)";
    return false;
  }

  // ---- renderers ----
  let healthByDb = {}, findingsByDb = {};

  function renderStatus(status, jobs) {
    byId("error").hidden = true;
    byId("meta").textContent = "sqlbakd " + str(status.version) + " · up " +
        duration(1000 * (status.uptime_seconds || 0)) + " · updated " + new Date().toLocaleTimeString();
    const dbs = status.databases || [];
    const cards = dbs.map(function (db) {
      const state = healthByDb[db.name];
      const card = el("article", "card " + (state ? stateClass(state) : "unknown"));
      card.setAttribute("data-db", str(db.name));
      card.append(el("h3", null, el("span", "mono", str(db.name)), badge(state)));
      card.append(el("div", "path", str(db.path)));
      const dl = el("dl");
      const add = (k, ...v) => { dl.append(el("dt", null, k), el("dd", null, ...v)); };
      const last = db.last_backup;
      if (last) {
        add("Last backup", when(last.time) + " (" + ago(last.time) + ") ",
            badge(last.result === "success" ? "OK" : last.result === "cancelled" ? "WARNING" : "CRITICAL"));
        if (last.id) add("Backup", el("span", "mono", str(last.id)));
        if (last.error) add("Error", el("span", "error", str(last.error)));
      } else {
        add("Last backup", "never");
      }
      add("Next backup", db.next_backup ? when(db.next_backup) + " (" + ago(db.next_backup) + ")" : "not scheduled");
      add("Schedule", el("span", "mono", str(db.schedule)));
      card.append(dl);
      if (db.running) {
        const pct = db.running.total > 0 ? Math.round(100 * db.running.done / db.running.total) + " %" : "starting";
        card.append(el("div", "muted", "Backing up: " + pct), progressBar(db.running.done, db.running.total));
      }
      for (const f of findingsByDb[db.name] || [])
        card.append(el("div", stateClass(f.state) === "ok" ? "muted" : "error", str(f.message)));
      return card;
    });
    replace("databases", ...(cards.length ? cards : [el("p", "muted", "No databases are configured.")]));

    const list = (jobs && jobs.jobs) || [];
    if (!list.length) {
      replace("jobs", el("p", "muted", "No backup is running."));
    } else {
      replace("jobs", ...list.map(function (j) {
        const pct = j.progress === null || j.progress === undefined ? "starting" : (100 * j.progress).toFixed(1) + " %";
        const box = el("div", "job",
            el("strong", "mono", str(j.database)), " · job " + str(j.job) + " · " + str(j.trigger) +
            " · started " + ago(j.started), progressBar(j.done, j.total),
            el("span", "muted", pct + " · " + str(j.done) + " / " + str(j.total) + " pages"));
        box.setAttribute("data-job", str(j.job));
        return box;
      }));
    }
  }

  function renderHealth(health) {
    healthByDb = {};
    findingsByDb = {};
    for (const d of health.databases || []) healthByDb[d.name] = d.state;
    for (const f of health.findings || []) (findingsByDb[f.database] = findingsByDb[f.database] || []).push(f);
    const overall = byId("overall");
    overall.className = "badge " + stateClass(health.state);
    overall.textContent = str(health.state);
    const items = (health.findings || []).map((f) => el("li", null, badge(f.state), " ",
        el("span", "mono", str(f.database) + (f.target ? " @ " + str(f.target) : "")), ": ", str(f.message)));
    replace("health", el("p", null, str(health.summary)),
            items.length ? el("ul", "findings", ...items) : null);
  }

  function renderBackups(doc) {
    const all = (doc && doc.backups) || [];
    if (!all.length) { replace("backups", el("p", "muted", "No backups yet.")); return; }
    const head = el("tr");
    const cols = [["Backup", ""], ["Database", ""], ["Target", "opt"], ["Created", ""], ["Kind", "opt"],
                  ["Database size", "num"], ["Stored", "num"], ["Ratio", "num opt"], ["Duration", "num opt"],
                  ["Last verification", ""]];
    for (const [name, cls] of cols) head.append(el("th", cls || null, name));
    const rows = all.slice(0, MAX_BACKUPS).map(function (b) {
      const v = b.last_verification;
      const verification = v ? el("span", null, badge(v.result === "success" ? "OK" : "CRITICAL"), " " + when(v.time))
                             : el("span", "muted", "never");
      if (v && v.error) verification.append(el("div", "error", str(v.error)));
      const tr = el("tr", null,
          el("td", "mono", str(b.id)), el("td", "mono", str(b.database)), el("td", "opt", str(b.target)),
          el("td", null, when(b.created)), el("td", "opt", str(b.kind)),
          el("td", "num", bytes(b.database_bytes)), el("td", "num", bytes(b.stored_bytes)),
          el("td", "num opt", typeof b.ratio === "number" && b.ratio > 0 ? b.ratio.toFixed(2) + "×" : "–"),
          el("td", "num opt", duration(b.duration_ms)), el("td", null, verification));
      tr.setAttribute("data-backup", str(b.id));
      return tr;
    });
    const table = el("table", null, el("thead", null, head), el("tbody", null, ...rows));
    const note = all.length > MAX_BACKUPS ? el("p", "muted", "The newest " + MAX_BACKUPS + " of " + all.length +
                                                " backups.") : null;
    replace("backups", table, note);
  }

  let lastReport = null, lastReportError = "";
  function renderChart(report, error) {
    lastReport = report;
    lastReportError = error;
    const days = (report && report.per_day) || [];
    const has = days.some((d) => (d.backups || 0) > 0 || (d.stored_bytes || 0) > 0);
    if (!has) {
      replace("chart", el("p", "muted", "No data for the last 30 days" + (error ? " (" + error + ")" : "") + "."));
      return;
    }
    // Drawn at the width it is shown at, so that its text keeps its size on a phone.
    const W = Math.max(300, Math.min(960, byId("chart").clientWidth - 16 || 720));
    const H = W < 500 ? 200 : 240, L = 58, R = 52, T = 12, B = 30;
    const w = W - L - R, h = H - T - B, n = days.length, step = w / n;
    const maxBytes = Math.max(1, ...days.map((d) => d.stored_bytes || 0));
    const durations = days.map((d) => typeof d.mean_duration_ms === "number" ? d.mean_duration_ms : null);
    const maxMs = Math.max(1, ...durations.filter((x) => x !== null));
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", id: "history-chart",
                              "data-days": n, "aria-label": "Stored bytes and mean backup duration per day" });
    for (let i = 0; i <= 4; i++) {
      const y = T + h - (h * i) / 4;
      root.append(svg("line", { x1: L, x2: L + w, y1: y, y2: y, class: "grid" }));
      const lt = svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" });
      lt.textContent = bytes((maxBytes * i) / 4);
      const rt = svg("text", { x: L + w + 6, y: y + 4 });
      rt.textContent = duration((maxMs * i) / 4);
      root.append(lt, rt);
    }
    const points = [];
    days.forEach(function (d, i) {
      const x = L + i * step;
      const bh = ((d.stored_bytes || 0) / maxBytes) * h;
      if (bh > 0) {
        const bar = svg("rect", { x: x + step * 0.15, y: T + h - bh, width: step * 0.7, height: bh, class: "bar" });
        const title = svg("title", {});
        title.textContent = str(d.date) + ": " + bytes(d.stored_bytes) + " stored, " + str(d.backups) + " backup(s)" +
                            (d.failures ? ", " + d.failures + " failed" : "");
        bar.append(title);
        root.append(bar);
      }
      if (d.failures) root.append(svg("rect", { x: x + step * 0.15, y: T + h + 2, width: step * 0.7, height: 4,
                                                class: "fail" }));
      if (durations[i] !== null) {
        const px = x + step / 2, py = T + h - (durations[i] / maxMs) * h;
        points.push(px.toFixed(1) + "," + py.toFixed(1));
        const dot = svg("circle", { cx: px, cy: py, r: 3, class: "dot" });
        const title = svg("title", {});
        title.textContent = str(d.date) + ": mean duration " + duration(durations[i]);
        dot.append(title);
        root.append(dot);
      }
    });
    if (points.length > 1) root.append(svg("polyline", { points: points.join(" "), class: "curve" }));
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      const t = svg("text", { x: L + i * step + step / 2, y: H - 8, "text-anchor": "middle" });
      t.textContent = str(days[i].date);
      root.append(t);
    }
    const legend = el("div", "legend",
        el("span", null, el("span", "swatch bar"), "stored bytes per day (left)"),
        el("span", null, el("span", "swatch curve"), "mean backup duration (right)"),
        el("span", null, el("span", "swatch fail"), "a day with failures"));
    replace("chart", root, legend);
  }

  // ---- refresh loops: one request of each kind in flight at a time ----
  let fastBusy = false, fastAgain = false, slowBusy = false, slowAgain = false;

  async function refreshFast() {
    if (fastBusy) { fastAgain = true; return; }
    fastBusy = true;
    clearTimeout(fastTimer);
    let running = false, stop = false;
    try {
      const [status, jobs] = await Promise.all([api("/api/status"), api("/api/jobs")]);
      renderStatus(status, jobs);
      running = (jobs.jobs || []).length > 0;
      const seen = JSON.stringify((status.databases || []).map((d) => [d.name, d.last_backup, !!d.running]));
      if (lastSeen && seen !== lastSeen) refreshSlow();  // a backup ended or began: new history
      lastSeen = seen;
    } catch (e) {
      stop = showError(e);
    }
    fastBusy = false;
    if (stop || waitingForToken) return;
    if (fastAgain) { fastAgain = false; refreshFast(); return; }
    fastTimer = setTimeout(refreshFast, running ? FAST_MS : IDLE_MS);
  }

  async function refreshSlow() {
    if (slowBusy) { slowAgain = true; return; }
    slowBusy = true;
    clearTimeout(slowTimer);
    const settled = await Promise.allSettled([api("/api/health"), api("/api/backups"),
                                              api("/api/report?days=30")]);
    slowBusy = false;
    const denied = settled.find((s) => s.status === "rejected" && s.reason instanceof AuthError);
    if (denied) { showError(denied.reason); return; }
    const [health, backups, report] = settled;
    if (health.status === "fulfilled") renderHealth(health.value);
    else replace("health", el("p", "error", "Health unavailable: " + str(health.reason && health.reason.message)));
    if (backups.status === "fulfilled") renderBackups(backups.value);
    else replace("backups", el("p", "error", "Backups unavailable: " + str(backups.reason && backups.reason.message)));
    if (report.status === "fulfilled") renderChart(report.value, "");
    else renderChart(null, str(report.reason && report.reason.message));
    if (waitingForToken) return;
    if (slowAgain) { slowAgain = false; refreshSlow(); return; }
    slowTimer = setTimeout(refreshSlow, SLOW_MS);
    refreshFast();  // the cards show the new health
  }

  let resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (lastReport) renderChart(lastReport, lastReportError); }, 200);
  });

  refreshFast();
  refreshSlow();
})();
</script>
</body>
</html>
)page";

std::string base64(const Digest& d) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= d.size(); i += 3) {
    const uint32_t v = (uint32_t{d[i]} << 16) | (uint32_t{d[i + 1]} << 8) | d[i + 2];
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (i < d.size()) {  // 32 bytes: two left over
    const uint32_t v = (uint32_t{d[i]} << 16) | (i + 1 < d.size() ? uint32_t{d[i + 1]} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < d.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// 'sha256-...' of the text between OPEN and CLOSE in the page.
std::string inline_hash(std::string_view open, std::string_view close) {
  const size_t start = kPage.find(open) + open.size();
  const size_t end = kPage.find(close, start);
  return "'sha256-" + base64(sha256(kPage.substr(start, end - start))) + "'";
}

}  // namespace

std::string_view dashboard_html() { return kPage; }

const std::string& dashboard_csp() {
  static const std::string kCsp = "default-src 'none'; script-src " + inline_hash("<script>", "</script>") +
                                  "; style-src " + inline_hash("<style>", "</style>") +
                                  "; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                                  "frame-ancestors 'none'";
  return kCsp;
}

}  // namespace sqlbak::daemon
