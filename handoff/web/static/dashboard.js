// handoff dashboard: fetch /metrics/summary, fill the cards, draw SVG charts. No libraries.
"use strict";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const COUNTS = [
  ["conversations_started", "started"],
  ["conversations_closed", "closed"],
  ["resolved_by_bot", "resolved by bot"],
  ["escalations", "escalated"],
  ["resolved_by_agent", "resolved by agent"],
  ["abandoned", "abandoned"],
  ["reopened", "reopened"],
  ["ticket_creates", "ticket creates"],
  ["duplicate_tickets", "duplicate tickets"],
  ["crm_commands", "CRM commands"],
  ["agent_messages", "agent messages"],
  ["csat_count", "CSAT answers"],
];

function fmtRate(name, v) {
  if (v === null || v === undefined) return "–";
  if (name === "csat_average") return v.toFixed(2);
  return (v * 100).toFixed(1) + "%";
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function cards(s) {
  for (const card of document.querySelectorAll(".card")) {
    const value = card.querySelector(".value");
    if (card.dataset.rate) {
      const v = s.rates[card.dataset.rate];
      value.textContent = fmtRate(card.dataset.rate, v);
      card.dataset.value = v === null || v === undefined ? "null" : String(v);
    } else {
      const v = s.totals[card.dataset.total] || 0;
      value.textContent = String(v);
      card.dataset.value = String(v);
      card.classList.toggle("alert", v > 0);
    }
  }
  const sla = s.sla || {};
  const hint = document.getElementById("sla-hint");
  hint.textContent = `within ${Math.round(sla.target_seconds / 60)} min · p50 ${
    sla.p50_seconds === null ? "–" : Math.round(sla.p50_seconds) + " s"} · p90 ${
    sla.p90_seconds === null ? "–" : Math.round(sla.p90_seconds) + " s"}`;
}

function counts(s) {
  const box = document.getElementById("counts");
  box.replaceChildren();
  for (const [key, label] of COUNTS) {
    const d = el("div", { class: "count", "data-count": key });
    d.append(el("b", {}, String(s.totals[key] || 0)), el("span", {}, label));
    box.append(d);
  }
}

function chart(id, rows, size) {
  const box = document.getElementById(id);
  const W = 560, H = 170, L = 30, B = 20, T = 8;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const max = Math.max(1, ...rows.map((r) => Math.max(r.conversations_started, r.escalations)));
  const step = (W - L - 4) / Math.max(1, rows.length);
  const y = (v) => H - B - (v / max) * (H - B - T);
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    root.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "grid" }));
    const t = svg("text", { x: L - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    t.textContent = String(v);
    root.append(t);
  }
  rows.forEach((r, i) => {
    const x = L + i * step;
    const w = Math.max(1, step * 0.42);
    root.append(svg("rect", { x, y: y(r.conversations_started), width: w, height: H - B - y(r.conversations_started), class: "s" }));
    root.append(svg("rect", { x: x + w, y: y(r.escalations), width: w, height: H - B - y(r.escalations), class: "e" }));
    const every = size === 60 ? 10 : 4;
    if (i % every === 0) {
      const t = svg("text", { x, y: H - 5, class: "axis" });
      const d = new Date(r.start * 1000);
      t.textContent = size === 60 ? d.toISOString().slice(11, 16) : d.toISOString().slice(5, 13) + "h";
      root.append(t);
    }
  });
  const pts = rows.map((r, i) => `${L + i * step + step * 0.42},${y(r.resolved_by_bot)}`).join(" ");
  root.append(svg("polyline", { points: pts, class: "r" }));
  box.replaceChildren(root);
}

function table(id, groups, rateNames) {
  const t = document.getElementById(id);
  t.replaceChildren();
  const head = el("tr");
  for (const h of ["", "started", "escalated", "resolution", "escalation", "CSAT"]) head.append(el("th", {}, h));
  t.append(head);
  for (const [label, g] of Object.entries(groups)) {
    const tr = el("tr", { "data-label": label });
    tr.append(el("td", {}, label));
    tr.append(el("td", {}, String(g.counts[rateNames] || 0)));
    tr.append(el("td", {}, String(g.counts.escalations || 0)));
    tr.append(el("td", {}, fmtRate("resolution_rate", g.rates.resolution_rate)));
    tr.append(el("td", {}, fmtRate("escalation_rate", g.rates.escalation_rate)));
    tr.append(el("td", {}, fmtRate("csat_average", g.rates.csat_average)));
    t.append(tr);
  }
}

function reasons(byReason) {
  const box = document.getElementById("by-reason");
  box.replaceChildren();
  const max = Math.max(1, ...Object.values(byReason));
  for (const [r, n] of Object.entries(byReason).sort((a, b) => b[1] - a[1])) {
    const row = el("div", { class: "bar", "data-reason": r });
    const fill = el("i");
    fill.style.width = `${(100 * n) / max}%`;
    row.append(el("span", {}, r.replaceAll("_", " ")), fill, el("b", {}, String(n)));
    box.append(row);
  }
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    // With HANDOFF_WEB_TOKEN set, the data views want a bearer token: ask once, keep it
    // for this tab only (sessionStorage), never in the URL where logs would keep it.
    const token = sessionStorage.getItem("handoff-token");
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const res = await fetch("/metrics/summary", { cache: "no-store", headers });
    if (res.status === 401) {
      const given = window.prompt("Web token (HANDOFF_WEB_TOKEN) for the metrics views:");
      if (given) sessionStorage.setItem("handoff-token", given);
      throw new Error("HTTP 401: token required");
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const s = await res.json();
    cards(s);
    counts(s);
    if (s.trend) {
      chart("trend-minutes", s.trend.minutes, 60);
      chart("trend-hours", s.trend.hours, 3600);
    }
    table("by-intent", s.by_intent, "conversations_classified");
    table("by-channel", s.by_channel, "conversations_started");
    reasons(s.by_reason);
    const c = s.cluster || {};
    status.dataset.state = c.complete ? "ok" : "partial";
    status.textContent = `${c.complete ? "all" : "partial:"} ${(c.partitions || []).length}/${c.expected_partitions} partitions · ${Object.keys(c.workers || {}).length} worker(s) · ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.dataset.state = "error";
    status.textContent = `cannot load metrics: ${err.message}`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
