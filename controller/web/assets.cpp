// The dashboard's stylesheet and script, compiled in: fleetctl serves them itself and the
// pages load nothing from anywhere else (Content-Security-Policy: 'self').
#include <string_view>

#include "controller/web/pages.hpp"

namespace fleet::web {

const std::string_view k_stylesheet = R"css(
:root { --good: #1b7a3a; --bad: #b3261e; --busy: #8a5a00; --idle: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: #1d1d1f; background: #fafafa; }
header { display: flex; flex-wrap: wrap; gap: .5em 1em; align-items: center; padding: .5em 1em;
         background: #20232a; color: #eee; }
header a { color: #eee; text-decoration: none; margin-right: .8em; }
header .brand { font-weight: 700; }
header form { display: inline; }
header button { font: inherit; background: none; color: #aaa; border: 1px solid #555; border-radius: 3px; }
.live { margin-left: auto; font-size: .85em; color: #9c9; }
main { padding: .5em 1em 2em; max-width: 1400px; }
h1 small, h2 small { font-weight: 400; color: var(--idle); font-size: .6em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .85em; color: #444; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.message { max-width: 28em; overflow-wrap: anywhere; font-size: .9em; color: #444; }
tr.good .state { color: var(--good); font-weight: 600; }
tr.bad .state, .bad:not(tr) { color: var(--bad); font-weight: 600; }
tr.busy .state { color: var(--busy); font-weight: 600; }
.check { display: inline-block; padding: 0 .35em; margin: 1px; border-radius: 3px; font-size: .8em; white-space: nowrap; }
.check.pass { background: #e3f3e8; color: var(--good); }
.check.warn { background: #fff1d6; color: var(--busy); }
.check.fail { background: #fbe0de; color: var(--bad); font-weight: 700; }
.changed { background: #fff6a8; transition: background 1s; }
small.faster { color: var(--good); }
small.slower { color: var(--bad); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.facts dt { color: var(--idle); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
progress { width: 100%; max-width: 30em; }
.chart { position: relative; height: 280px; max-width: 900px; background: #fff; }
form.login { max-width: 26em; }
form.login input[type=password] { width: 100%; font: inherit; padding: .4em; }
form.login button { margin-top: .6em; font: inherit; padding: .3em 1.2em; }
@media (max-width: 700px) {
  body { font-size: 14px; }
  th, td { padding: .3em .35em; }
  main { padding: .3em .4em 1em; }
  /* A board per card: each cell on its own line, named by its column. */
  table.cards thead { display: none; }
  table.cards tr { display: block; border: 1px solid var(--line); border-radius: 4px; margin: 0 0 .6em; background: #fff; }
  table.cards td { display: flex; gap: .6em; border: 0; padding: .15em .5em; max-width: none; }
  table.cards td::before { content: attr(data-label); flex: 0 0 7.5em; color: var(--idle); font-size: .85em; }
  table.cards td.num { text-align: left; }
  table.cards td.checks { flex-wrap: wrap; }
}
)css";

const std::string_view k_script = R"js(
"use strict";
(function () {
  const body = document.body;
  const liveMark = document.getElementById("live");
  function rowsFor(name) {
    // Compared as data, never put into a selector: a board's name is text from outside.
    return Array.from(document.querySelectorAll("tr[data-board]")).filter(tr => tr.dataset.board === name);
  }
  function set(tr, field, value) {
    const el = tr.querySelector('[data-field="' + field + '"]');
    if (!el || el.textContent === value) return;
    el.textContent = value;
    el.classList.add("changed");
    setTimeout(() => el.classList.remove("changed"), 1500);
  }
  // The server's rules (pages.cpp tone_of), as the page carries them.
  const words = name => (body.dataset[name] || "").split(" ").filter(w => w);
  const busySteps = words("busySteps"), goodOutcomes = words("goodOutcomes"), idleOutcomes = words("idleOutcomes");
  function tone(b) {
    if (b.step === "pending") return "idle";
    if (b.step !== "done") return busySteps.includes(b.step) ? "busy" : "bad";
    if (goodOutcomes.includes(b.outcome)) return "good";
    return !b.outcome || idleOutcomes.includes(b.outcome) ? "idle" : "bad";
  }
  function utc(ms) {
    const n = Number(ms);
    return n > 0 ? new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "-";
  }
  function recountWaves() {
    for (const wave of document.querySelectorAll("section.wave")) {
      const rows = wave.querySelectorAll("tr[data-board]");
      let done = 0;
      rows.forEach(tr => { const s = tr.querySelector('[data-field="step"]'); if (s && s.textContent === "done") done++; });
      const out = wave.querySelector('[data-field="wave-done"]');
      if (out) out.textContent = String(done);
      const bar = wave.querySelector("progress");
      if (bar) bar.value = done;
    }
  }
  // The verification chips, built as the server builds them, every text through textContent.
  function setChecks(tr, checks) {
    const cell = tr.querySelector("td.checks");
    if (!cell || !checks || checks.length === 0) return;
    const chips = [];
    for (const c of checks) {
      if (c.property === "bootloader") continue;
      const cls = !c.pass ? "fail" : (c.warning ? "warn" : "pass");
      const chip = document.createElement("span");
      chip.className = "check " + cls;
      chip.dataset.check = c.property;
      chip.dataset.pass = c.pass ? "true" : "false";
      chip.title = c.property + ": expected " + c.expected + ", got " + c.actual +
                   (c.detail ? " (" + c.detail + ")" : "") + (c.warning ? "; warning: " + c.warning : "");
      chip.textContent = c.property + " " + (cls === "fail" ? "FAIL" : cls === "warn" ? "warn" : "ok");
      chips.push(chip, document.createTextNode(" "));
    }
    const before = Array.from(cell.querySelectorAll(".check")).map(e => e.textContent).join("|");
    cell.replaceChildren(...chips);
    if (before !== chips.filter(e => e.nodeType === 1).map(e => e.textContent).join("|")) {
      cell.classList.add("changed");
      setTimeout(() => cell.classList.remove("changed"), 1500);
    }
  }
  function onBoard(b) {
    const state = b.step === "done" ? (b.outcome || "done") : b.step;
    for (const tr of rowsFor(b.board)) {
      set(tr, "state", state);
      set(tr, "step", b.step);
      set(tr, "outcome", b.outcome || "-");
      set(tr, "kernel", b.kernel_release);
      set(tr, "message", b.message);
      set(tr, "report", utc(b.last_report_unix_ms));
      setChecks(tr, b.checks);
      tr.className = tone(b);
    }
    recountWaves();
  }
  function onRollout(r) {
    for (const [field, value] of [["rollout-state", r.state], ["rollout-message", r.message]]) {
      const el = document.querySelector('[data-field="' + field + '"]');
      if (el && value && el.textContent !== value) { el.textContent = value; el.classList.add("changed"); }
    }
  }
  if (body.dataset.live && window.EventSource) {
    const es = new EventSource(body.dataset.live);
    es.addEventListener("open", () => { if (liveMark) liveMark.textContent = "live"; });
    es.addEventListener("error", () => { if (liveMark) liveMark.textContent = "reconnecting"; });
    es.addEventListener("board", e => onBoard(JSON.parse(e.data)));
    es.addEventListener("rollout", e => onRollout(JSON.parse(e.data)));
  }
  const canvas = document.getElementById("chart");
  if (canvas) {
    const points = JSON.parse(canvas.dataset.points || "[]");
    if (!window.Chart) {
      canvas.replaceWith(Object.assign(document.createElement("p"),
        { textContent: "Chart.js is not installed (Debian's libjs-chart.js); the history below has every figure." }));
    } else if (points.length === 0) {
      canvas.replaceWith(Object.assign(document.createElement("p"), { textContent: "No throughput measured yet." }));
    } else {
      new Chart(canvas, {
        type: "line",
        data: { datasets: [{ label: "tokens/s", data: points.map(p => ({ x: p.t, y: p.v, k: p.k })),
                             borderColor: "#1b6ac9", backgroundColor: "#1b6ac9", tension: 0.1 }] },
        options: {
          maintainAspectRatio: false, animation: false,
          scales: { x: { type: "linear", ticks: { callback: v => utc(v).slice(5, 16) } }, y: { beginAtZero: true } },
          plugins: { tooltip: { callbacks: { label: c => c.raw.y.toFixed(2) + " tokens/s on " + c.raw.k } } }
        }
      });
    }
  }
})();
)js";

}  // namespace fleet::web
