// Relay console: a single page over the admin API. The API decides what a
// token may see and do; this page only hides what the API would refuse.
// The token lives in sessionStorage (never in a URL) and is dropped on 401.
"use strict";

const TOKEN_KEY = "relay.console.token";
const PAGE_SIZE = 50;
const POLL_MS = 3000;
const TAIL_ROWS = 300;

const state = {
  who: null,        // {role, portal, destinations} from /api/whoami
  cleanup: [],      // functions that stop the current page's timers and streams
  portalHint: new URLSearchParams(location.search).get("portal") || "",
};

// ---------- small DOM helpers (text only: no HTML from data) ----------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function main() { return document.getElementById("main"); }

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat());
}

function say(msg, kind) {
  const s = document.getElementById("status");
  s.className = "status " + (kind || "info");
  s.textContent = msg || "";
}

// when renders a time in local time, with UTC on hover.
function when(iso) {
  if (!iso || iso.startsWith("0001-")) return h("span", { class: "muted" }, "never");
  const d = new Date(iso);
  if (isNaN(d)) return h("span", {}, iso);
  const local = d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  return h("time", { datetime: d.toISOString(), title: d.toISOString().replace("T", " ").replace("Z", " UTC") }, local);
}

function badge(text) {
  const kind = {
    delivered: "ok", success: "ok", closed: "ok", accepted: "ok", connected: "ok",
    pending: "info", retry: "warn", "half-open": "warn", parked: "warn", duplicate: "info", discarded: "warn",
    dead: "bad", open: "bad", disconnected: "bad", applied: "ok", refused: "bad",
  }[text] || "info";
  return h("span", { class: "badge " + kind }, text);
}

// httpStatus shows an HTTP status coloured by its class.
function httpStatus(code) {
  if (!code) return h("span", { class: "muted" }, "no response");
  const kind = code < 300 ? "ok" : code < 500 ? "warn" : "bad";
  return h("span", { class: "badge " + kind }, String(code));
}

function num(n) { return (n || 0).toLocaleString(); }

function table(caption, heads, rows, emptyText) {
  if (!rows.length) return h("p", { class: "empty" }, emptyText);
  return h("div", { class: "scroll" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, heads.map((c) => h("th", { scope: "col", class: c.cls }, c.label || c)))),
      h("tbody", {}, rows)));
}

function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, "Could not load: " + (err && err.message || err));
}

// ---------- API ----------

class APIError extends Error {
  constructor(status, msg, body) { super(msg); this.status = status; this.body = body; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(method, path, opts) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const resp = await fetch(path, { method, headers, cache: "no-store", signal: opts && opts.signal });
  let body = null;
  const text = await resp.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (resp.status === 401) {
    logout("Your token was refused (401); sign in again.");
    throw new APIError(401, "not signed in", body);
  }
  if (!resp.ok) {
    const msg = (body && body.error) || resp.status + " " + resp.statusText;
    throw new APIError(resp.status, msg, body);
  }
  return { body, next: resp.headers.get("X-Next-Cursor") || "" };
}

function isAdmin() { return state.who && state.who.role === "admin"; }

// ---------- login ----------

function logout(msg) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.who = null;
  stopPage();
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  loginPage(msg);
}

function loginPage(msg) {
  const portal = state.portalHint;
  const title = portal ? "Sign in to the " + portal + " portal" : "Sign in to Relay";
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error-box", role: "alert", hidden: !msg }, msg || "");
  const form = h("form", { class: "panel login", onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    try {
      await start();
    } catch (ex) {
      if (ex.status !== 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        loginPage("Sign-in failed: " + ex.message);
      }
    }
  } },
  h("h1", { id: "page-title", tabindex: "-1" }, title),
  err,
  h("div", { class: "field" },
    h("label", { for: "token" }, portal ? "Portal token" : "Admin or portal token"),
    input),
  h("p", { class: "muted" }, "The token stays in this browser tab only and is forgotten when you close it."),
  h("button", { type: "submit" }, "Sign in"));
  show(form);
  say("");
  input.focus();
}

// ---------- routing ----------

const pages = {
  overview: overviewPage,
  tail: tailPage,
  events: eventsPage,
  event: eventPage,
  dlq: dlqPage,
  parked: parkedPage,
  config: configPage,
};

function stopPage() {
  for (const fn of state.cleanup.splice(0)) {
    try { fn(); } catch (_) { /* stopping is best effort */ }
  }
}

function route() {
  if (!state.who) return;
  stopPage();
  say("");
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  let name = parts[0] || "overview";
  let arg = parts[1] ? decodeURIComponent(parts[1]) : "";
  if (name === "events" && arg) name = "event";
  if (!pages[name] || (!isAdmin() && (name === "parked" || name === "config"))) name = "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    const cur = a.dataset.page === name || (name === "event" && a.dataset.page === "events");
    if (cur) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const params = new URLSearchParams(query || "");
  Promise.resolve(pages[name](arg, params)).then(() => {
    const t = document.getElementById("page-title");
    if (t) t.focus({ preventScroll: true });
  });
}

function title(text) { return h("h1", { id: "page-title", tabindex: "-1" }, text); }

// every runs fn now and then every ms while the page is shown.
function every(ms, fn) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) await fn();
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  state.cleanup.push(() => { stopped = true; clearTimeout(timer); });
}

// ---------- Overview ----------

async function overviewPage() {
  const cards = h("div", { class: "cards" });
  const dests = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(title("Overview"), h("h2", { class: "visually-hidden" }, "Totals"), cards,
    h("h2", {}, "Destinations"), dests);
  let prev = null;
  every(POLL_MS, async () => {
    let st;
    try {
      st = (await api("GET", "/api/stats")).body;
    } catch (ex) {
      if (ex.status !== 401) dests.replaceChildren(errorBox(ex));
      return;
    }
    const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
    let rate = "–";
    if (prev && st.ingest) {
      const secs = (new Date(st.at) - new Date(prev.at)) / 1000;
      if (secs > 0) rate = ((sum(st.ingest) - sum(prev.ingest)) / secs).toFixed(1);
    }
    const d = st.deliveries || {};
    const c = [];
    if (st.ingest) c.push(card("Ingest rate", rate + "/s", num(sum(st.ingest)) + " callbacks since start"));
    c.push(card("Delivered", num(d.success), "successful attempts"));
    c.push(card("Retried", num(d.retry), "failed attempts retried"));
    c.push(card("Dead-lettered", num(d.dead), "attempts that gave up"));
    c.push(card("DLQ depth", num(st.dead), "deliveries waiting in the DLQ"));
    c.push(card("Queued", num(st.queued), "pending deliveries"));
    if (st.parked !== undefined && st.parked !== null) c.push(card("Parked", num(st.parked), "events with no route"));
    cards.replaceChildren(...c);
    dests.replaceChildren(destinationsTable(st.destinations || []));
    prev = st;
  });
}

function card(label, value, sub) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), h("div", { class: "sub" }, sub));
}

function destinationsTable(list) {
  const rows = list.map((s) => h("tr", {},
    h("th", { scope: "row" }, s.name, s.configured ? "" : h("span", { class: "muted" }, " (removed)")),
    h("td", { class: "num" }, num(s.queued)),
    h("td", { class: "num" }, s.dead ? h("a", { href: "#/dlq?destination=" + encodeURIComponent(s.name) }, num(s.dead)) : "0"),
    h("td", { class: "num" }, num(s.in_flight)),
    h("td", {}, s.circuit ? badge(s.circuit) : h("span", { class: "muted" }, "–"),
      s.consecutive_failures ? h("div", { class: "muted" }, s.consecutive_failures + " failures in a row") : ""),
    h("td", {}, when(s.last_success)),
    h("td", { class: "wrap" }, s.last_error ? [when(s.last_failure), h("div", { class: "muted" }, s.last_error)] : h("span", { class: "muted" }, "none")),
    h("td", {}, s.agent ? [s.agent, " ", badge(s.agent_connected ? "connected" : "disconnected")] : h("span", { class: "muted" }, "direct"))));
  return table("Per destination, refreshed every few seconds",
    ["Destination", { label: "Queued", cls: "num" }, { label: "DLQ", cls: "num" }, { label: "In flight", cls: "num" },
      "Circuit", "Last success", "Last error", "Agent"], rows, "No destinations.");
}

// ---------- Live tail ----------

async function tailPage() {
  const body = h("tbody");
  const info = h("p", { class: "muted", id: "tail-state" }, "Connecting…");
  let paused = false;
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false", onclick: () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  } }, "Pause");
  const clear = h("button", { type: "button", class: "secondary", onclick: () => body.replaceChildren() }, "Clear");
  show(title("Live tail"),
    h("p", {}, "Callbacks and delivery outcomes as they happen. The newest is on top; at most " + TAIL_ROWS + " are kept."),
    h("div", { class: "actions" }, pause, clear, info),
    h("div", { class: "scroll" }, h("table", { id: "tail-table" },
      h("caption", {}, "Live events"),
      h("thead", {}, h("tr", {}, ["Time", "Kind", "Outcome", "Event", "Destination", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
      body)));
  const ctrl = new AbortController();
  state.cleanup.push(() => ctrl.abort());
  let backoff = 1000;
  while (!ctrl.signal.aborted) {
    try {
      await streamTail(ctrl.signal, (it) => {
        if (paused) return;
        const row = tailRow(it);
        body.prepend(row);
        while (body.children.length > TAIL_ROWS) body.lastChild.remove();
      }, () => { info.textContent = "Live: connected."; backoff = 1000; });
    } catch (ex) {
      if (ctrl.signal.aborted || ex.status === 401) return;
      if (ex.status === 403 || ex.status === 501) { info.textContent = "The live tail is not available: " + ex.message; return; }
    }
    if (ctrl.signal.aborted) return;
    info.textContent = "Disconnected; reconnecting…";
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 15000);
  }
}

function tailRow(it) {
  const ev = it.event_id ? h("a", { href: "#/events/" + encodeURIComponent(it.event_id), class: "mono" }, it.event_id) : "";
  let detail;
  if (it.kind === "attempt") {
    detail = ["attempt " + it.attempt, it.status ? " · HTTP " + it.status : "", it.duration_ms ? " · " + it.duration_ms.toFixed(1) + " ms" : "",
      it.error ? h("div", { class: "muted wrap" }, it.error) : ""];
  } else {
    detail = [it.webhook_id ? "webhook " + it.webhook_id : "", it.dedupe_key ? " · mid " + it.dedupe_key : ""];
  }
  return h("tr", { class: "new" },
    h("td", {}, when(it.at)),
    h("td", {}, it.kind === "attempt" ? "delivery" : "callback"),
    h("td", {}, badge(it.outcome)),
    h("td", {}, ev),
    h("td", {}, it.destination || (it.destinations || []).join(", ")),
    h("td", { class: "wrap" }, detail));
}

// streamTail reads GET /api/tail (server-sent events) with the token in a
// header, which EventSource cannot send.
async function streamTail(signal, onItem, onOpen) {
  const resp = await fetch("/api/tail", {
    headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" }, signal, cache: "no-store",
  });
  if (resp.status === 401) { logout("Your token was refused (401); sign in again."); throw new APIError(401, "not signed in"); }
  if (!resp.ok) {
    let msg = resp.status + "";
    try { msg = (await resp.json()).error; } catch (_) { /* keep the status */ }
    throw new APIError(resp.status, msg);
  }
  onOpen();
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const msg = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "", data = "";
      for (const line of msg.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data || event) continue; // comments, keep-alives, "dropped"
      try { onItem(JSON.parse(data)); } catch (_) { /* skip a bad line */ }
    }
  }
}

// ---------- Events ----------

function toISO(local) { return local ? new Date(local).toISOString() : ""; }

function fromISO(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
}

function field(id, label, input) {
  input.id = id;
  input.name = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

async function eventsPage(_, params) {
  const inputs = {
    mid: h("input", { type: "search", value: params.get("mid") || "", autocomplete: "off" }),
    webhook_id: h("input", { type: "search", value: params.get("webhook_id") || "", autocomplete: "off" }),
    status: h("select", {}, ["", "pending", "delivered", "dead", "discarded", "parked"].map((s) =>
      h("option", { value: s, selected: params.get("status") === s }, s || "any"))),
    since: h("input", { type: "datetime-local", value: fromISO(params.get("since")) }),
    until: h("input", { type: "datetime-local", value: fromISO(params.get("until")) }),
  };
  const results = h("div", {});
  const form = h("form", { class: "panel search", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ["mid", "webhook_id", "status"]) if (inputs[k].value.trim()) q.set(k, inputs[k].value.trim());
    for (const k of ["since", "until"]) if (inputs[k].value) q.set(k, toISO(inputs[k].value));
    const target = "#/events" + (q.toString() ? "?" + q : "");
    if (location.hash === target) route(); else location.hash = target;
  } },
  field("q-mid", "mid", inputs.mid),
  field("q-webhook", "webhook_id", inputs.webhook_id),
  field("q-status", "Status", inputs.status),
  field("q-since", "Received from (local time)", inputs.since),
  field("q-until", "Received before (local time)", inputs.until),
  h("button", { type: "submit" }, "Search"));
  show(title("Events"), form, results);

  const q = new URLSearchParams();
  for (const k of ["mid", "webhook_id", "status", "since", "until"]) if (params.get(k)) q.set(k, params.get(k));
  q.set("limit", PAGE_SIZE);
  pagedList(results, "/api/events", q, "Events, newest first", ["Received", "Event", "webhook_id", "mid", "Status", "Deliveries"],
    (ev) => h("tr", {},
      h("td", {}, when(ev.received_at)),
      h("td", {}, h("a", { href: "#/events/" + encodeURIComponent(ev.id), class: "mono" }, ev.id)),
      h("td", {}, ev.webhook_id),
      h("td", { class: "wrap" }, ev.dedupe_key || h("span", { class: "muted" }, "–")),
      h("td", {}, badge(ev.status)),
      h("td", {}, ev.deliveries.length ? ev.deliveries.map((d) => h("div", {}, d.destination, " ", badge(d.state))) : h("span", { class: "muted" }, "none"))),
    "No events match. Events are kept for the store's retention (72 h by default).");
}

// pagedList shows one page of path at a time with Previous and Next,
// following the API's cursors; it never loads more than one page.
function pagedList(container, path, query, caption, heads, rowFn, emptyText, onPage) {
  const cursors = [""];
  let i = 0;
  const load = async () => {
    container.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    const q = new URLSearchParams(query);
    if (cursors[i]) q.set("cursor", cursors[i]);
    let res;
    try {
      res = await api("GET", path + "?" + q);
    } catch (ex) {
      if (ex.status !== 401) container.replaceChildren(errorBox(ex));
      return;
    }
    cursors[i + 1] = res.next;
    const items = res.body || [];
    const prev = h("button", { type: "button", class: "secondary", disabled: i === 0, onclick: () => { i--; load(); } }, "Previous page");
    const next = h("button", { type: "button", class: "secondary", disabled: !res.next, onclick: () => { i++; load(); } }, "Next page");
    const pageInfo = h("span", { class: "muted" }, "Page " + (i + 1) + (items.length ? " · " + items.length + " shown" : ""));
    const empty = !items.length && res.next ? "Nothing on this page of the search; try the next page." : emptyText;
    container.replaceChildren(table(caption, heads, items.map(rowFn), empty),
      (i > 0 || res.next) ? h("nav", { class: "pager", "aria-label": "Pages" }, prev, next, pageInfo) : "");
    if (onPage) onPage(items);
  };
  load();
  return load;
}

function decodeBody(ev) {
  if (ev.body_encoding !== "base64") return { text: ev.body, binary: false };
  try {
    const bin = atob(ev.body);
    return { text: new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))), binary: true };
  } catch (_) { return { text: ev.body, binary: true }; }
}

async function eventPage(id) {
  // The page fills main itself once the event arrives, so it must not when
  // the user has moved on meanwhile.
  let left = false;
  state.cleanup.push(() => { left = true; });
  show(title("Event " + id), h("p", { class: "muted" }, "Loading…"));
  let ev;
  try {
    ev = (await api("GET", "/api/events/" + encodeURIComponent(id))).body;
  } catch (ex) {
    if (ex.status === 401 || left) return;
    // A portal gets 404 for another client's event too, as for a missing one.
    const msg = ex.status === 404 ? "No event " + id + " (events expire after the store's retention)." : ex.message;
    show(title("Event " + id), h("div", { class: "error-box", role: "alert" }, msg), h("p", {}, h("a", { href: "#/events" }, "Back to events")));
    return;
  }
  if (left) return;
  const body = decodeBody(ev);
  let pretty = null;
  try { pretty = JSON.stringify(JSON.parse(body.text), null, 2); } catch (_) { /* not JSON */ }
  const route = ev.route.parked ? "parked: matched no route" : ev.route.destinations.join(", ");
  const sections = [
    title("Event " + ev.id),
    h("div", { class: "panel" }, h("dl", { class: "meta" },
      h("dt", {}, "Status"), h("dd", {}, badge(ev.status)),
      h("dt", {}, "Received"), h("dd", {}, when(ev.received_at)),
      h("dt", {}, "webhook_id"), h("dd", {}, ev.webhook_id),
      h("dt", {}, "mid / dedupe key"), h("dd", {}, ev.dedupe_key || "–"),
      h("dt", {}, "Route"), h("dd", {}, ev.webhook_id + " → " + route),
      h("dt", {}, "Body"), h("dd", {}, ev.body_bytes + " bytes, " + (ev.content_type || "no content type") + (body.binary ? ", not UTF-8 (shown decoded; raw is base64)" : "")))),
    h("h2", {}, "Body"),
    pretty !== null ? h("pre", { class: "body", tabindex: "0", "aria-label": "Body, pretty-printed JSON" }, pretty) : h("pre", { class: "body", tabindex: "0", "aria-label": "Body" }, body.text),
    h("details", {}, h("summary", {}, body.binary ? "Raw body (base64)" : "Raw body (bytes as received)"),
      h("pre", { class: "body", tabindex: "0", "aria-label": "Raw body" }, ev.body)),
    h("h2", {}, "Deliveries"),
  ];
  if (!ev.deliveries.length) sections.push(h("p", { class: "empty" }, "No deliveries: the event is parked until a route matches it."));
  for (const d of ev.deliveries) sections.push(deliveryPanel(d));
  show(sections);
}

function deliveryPanel(d) {
  const actions = [];
  if (d.state === "dead") {
    actions.push(h("button", { type: "button", onclick: async (e) => {
      e.target.disabled = true;
      try {
        await api("POST", "/api/dlq/" + encodeURIComponent(d.id) + "/replay");
        say("Delivery " + d.id + " replayed; it is queued again.", "ok");
        route();
      } catch (ex) { say("Replay failed: " + ex.message, "error"); e.target.disabled = false; }
    } }, "Replay this delivery"));
  }
  const log = d.attempt_log || [];
  const rows = log.map((a) => h("tr", {},
    h("td", { class: "nowrap" }, a.replay ? badge("replay " + a.replay) : "first run"),
    h("td", { class: "num" }, a.n),
    h("td", {}, when(a.at)),
    h("td", {}, httpStatus(a.status)),
    h("td", { class: "num" }, a.duration_ms.toFixed(1) + " ms"),
    h("td", { class: "wrap" }, a.error || h("span", { class: "muted" }, "–")),
    h("td", { class: "wrap mono" }, a.response || "")));
  return h("section", { class: "panel", "aria-label": "Delivery to " + d.destination },
    h("h3", {}, d.destination, " ", badge(d.state)),
    h("p", { class: "muted" }, "Delivery ", h("span", { class: "mono" }, d.id), " · ", d.attempts + " attempt(s)" + (d.replays ? " since replay " + d.replays : ""),
      d.state === "pending" ? [" · due ", when(d.due_at)] : ""),
    actions.length ? h("div", { class: "actions" }, actions) : "",
    d.sent ? sentDetails(d.sent) : "",
    table("Attempts, oldest first", ["Run", { label: "#", cls: "num" }, "At", "Status", { label: "Took", cls: "num" }, "Error", "Response (excerpt)"],
      rows, "No attempt yet."));
}

// sentDetails shows what the destination's transform makes of the event.
function sentDetails(sent) {
  if (sent.error) return h("p", { class: "error-box" }, "The destination's transform fails on this event: " + sent.error);
  const text = sent.body_encoding === "base64" ? decodeBody(sent).text : sent.body;
  let pretty = text;
  try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
  const headers = Object.entries(sent.headers || {}).map(([k, v]) => k + ": " + v).join("\n");
  return h("details", {},
    h("summary", {}, "Sent after the destination's transform" + (sent.content_type ? " (" + sent.content_type + ")" : "")),
    headers ? h("pre", { class: "body", tabindex: "0", "aria-label": "Headers the transform adds" }, headers) : "",
    h("pre", { class: "body", tabindex: "0", "aria-label": "Body sent after the transform" }, pretty));
}

// ---------- Dead letters ----------

async function dlqPage(_, params) {
  const dest = params.get("destination") || "";
  const select = h("select", {}, h("option", { value: "" }, "all destinations"));
  const results = h("div");
  const replayAll = h("button", { type: "button", onclick: () => replayAllDialog(dest) }, dest ? "Replay all of " + dest + "…" : "Replay all…");
  show(title("Dead letters"),
    h("form", { class: "panel search", onsubmit: (e) => {
      e.preventDefault();
      location.hash = "#/dlq" + (select.value ? "?destination=" + encodeURIComponent(select.value) : "");
    } }, field("dlq-dest", "Destination", select), h("button", { type: "submit" }, "Filter")),
    h("div", { class: "actions" }, replayAll),
    results);
  try {
    const dests = (await api("GET", "/api/destinations")).body || [];
    for (const d of dests) select.append(h("option", { value: d.name, selected: d.name === dest }, d.name + " (" + d.dead + " dead" + (d.circuit === "open" ? ", circuit open" : "") + ")"));
  } catch (_) { /* the list below reports errors */ }
  const q = new URLSearchParams({ limit: PAGE_SIZE });
  if (dest) q.set("destination", dest);
  let reload;
  const rowFn = (d) => h("tr", {},
    h("td", {}, when(d.updated_at)),
    h("td", {}, d.destination),
    h("td", {}, h("a", { href: "#/events/" + encodeURIComponent(d.event_id), class: "mono" }, d.event_id)),
    h("td", { class: "num" }, d.attempts),
    h("td", {}, httpStatus(d.last_status)),
    h("td", { class: "wrap" }, d.last_error),
    h("td", {}, h("div", { class: "actions" },
      h("button", { type: "button", "aria-label": "Replay delivery " + d.id, onclick: (e) => act(e, "POST", "/api/dlq/" + encodeURIComponent(d.id) + "/replay", "Replayed " + d.id) }, "Replay"),
      isAdmin() ? h("button", { type: "button", class: "danger", "aria-label": "Delete delivery " + d.id, onclick: (e) => {
        if (confirm("Delete delivery " + d.id + " from the DLQ for good? It will never be attempted again.")) act(e, "DELETE", "/api/dlq/" + encodeURIComponent(d.id), "Deleted " + d.id);
      } }, "Delete") : "")));
  const act = async (e, method, path, done) => {
    e.target.disabled = true;
    try {
      await api(method, path);
      say(done, "ok");
      reload();
    } catch (ex) { if (ex.status !== 401) { say(ex.message, "error"); e.target.disabled = false; } }
  };
  reload = pagedList(results, "/api/dlq", q, "Dead-lettered deliveries, oldest first",
    ["Died", "Destination", "Event", { label: "Attempts", cls: "num" }, "Last status", "Last error", "Actions"], rowFn,
    "The dead-letter queue is empty.");
}

// replayAllDialog confirms, then replays every dead letter in view one by
// one, showing progress; it can be stopped.
function replayAllDialog(dest) {
  const progress = h("progress", { max: "1", value: "0", "aria-label": "Replay progress" });
  const text = h("p", { role: "status", "aria-live": "polite" }, "");
  let stop = false;
  const go = h("button", { type: "button" }, "Replay");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const dlg = h("dialog", { "aria-labelledby": "replay-title" },
    h("h2", { id: "replay-title" }, "Replay " + (dest ? "every dead letter of " + dest : "every dead letter") + "?"),
    h("p", {}, "Each delivery goes back into its queue, due now, and is attempted again from attempt 1 (marked as a replay)."),
    progress, text, h("div", { class: "actions" }, go, cancel));
  document.body.append(dlg);
  const close = () => { stop = true; dlg.close(); dlg.remove(); route(); };
  cancel.onclick = close;
  dlg.addEventListener("cancel", close);
  go.onclick = async () => {
    go.disabled = true;
    cancel.textContent = "Stop";
    text.textContent = "Listing…";
    const ids = [];
    let cursor = "";
    try {
      do {
        const q = new URLSearchParams({ limit: 1000 });
        if (dest) q.set("destination", dest);
        if (cursor) q.set("cursor", cursor);
        const res = await api("GET", "/api/dlq?" + q);
        for (const d of res.body || []) ids.push(d.id);
        cursor = res.next;
        text.textContent = "Listing… " + ids.length + " found";
      } while (cursor && !stop);
    } catch (ex) { text.textContent = "Could not list the DLQ: " + ex.message; return; }
    progress.max = Math.max(ids.length, 1);
    let done = 0, gone = 0, failed = 0;
    for (const id of ids) {
      if (stop) break;
      try {
        await api("POST", "/api/dlq/" + encodeURIComponent(id) + "/replay");
      } catch (ex) {
        if (ex.status === 401) return;
        if (ex.status === 404) gone++; else failed++;
      }
      done++;
      progress.value = done;
      text.textContent = done + " of " + ids.length + " replayed" + (gone ? ", " + gone + " already gone" : "") + (failed ? ", " + failed + " failed" : "");
    }
    text.textContent = (stop ? "Stopped: " : "Done: ") + text.textContent;
    cancel.textContent = "Close";
  };
  dlg.showModal();
  go.focus();
}

// ---------- Parked ----------

async function parkedPage() {
  const results = h("div");
  const all = h("button", { type: "button", onclick: async () => {
    if (!confirm("Route every parked event again under the running routes?")) return;
    all.disabled = true;
    try {
      const r = (await api("POST", "/api/parked/replay")).body;
      say("Routed " + r.replayed + " event(s) into " + (r.deliveries || 0) + " deliveries; " + (r.still_parked || 0) + " still match no route.", "ok");
      reload();
    } catch (ex) { if (ex.status !== 401) say(ex.message, "error"); }
    all.disabled = false;
  } }, "Replay all parked…");
  show(title("Parked events"),
    h("p", {}, "Events whose webhook_id matched no route. Add a route (and reload), then replay them."),
    h("div", { class: "actions" }, all), results);
  const reload = pagedList(results, "/api/parked", new URLSearchParams({ limit: PAGE_SIZE }), "Parked events, oldest first",
    ["Received", "Event", "webhook_id", "mid", "Body", "Actions"],
    (ev) => h("tr", {},
      h("td", {}, when(ev.received_at)),
      h("td", {}, h("a", { href: "#/events/" + encodeURIComponent(ev.id), class: "mono" }, ev.id)),
      h("td", {}, ev.webhook_id),
      h("td", {}, ev.dedupe_key || "–"),
      h("td", { class: "wrap mono" }, (ev.body_encoding === "base64" ? "(binary) " : "") + ev.body.slice(0, 120) + (ev.body.length > 120 ? "…" : "")),
      h("td", {}, h("button", { type: "button", "aria-label": "Replay parked event " + ev.id, onclick: async (e) => {
        e.target.disabled = true;
        try {
          const r = (await api("POST", "/api/parked/" + encodeURIComponent(ev.id) + "/replay")).body;
          say(r.replayed ? "Routed " + ev.id + " into " + r.deliveries + " deliveries." : ev.id + " still matches no route; it stays parked.", r.replayed ? "ok" : "info");
          reload();
        } catch (ex) { if (ex.status !== 401) { say(ex.message, "error"); e.target.disabled = false; } }
      } }, "Replay"))),
    "No parked events.");
}

// ---------- Config ----------

async function configPage() {
  const last = h("div");
  const yaml = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const btn = h("button", { type: "button", onclick: async () => {
    btn.disabled = true;
    try {
      const r = (await api("POST", "/api/reload")).body;
      say("Reloaded: " + r.routes + " routes, " + r.destinations + " destinations.", "ok");
    } catch (ex) {
      if (ex.status === 401) return;
      say("Reload refused: " + ex.message + (ex.body && ex.body.problems ? " — " + ex.body.problems.join("; ") : ""), "error");
    }
    btn.disabled = false;
    load();
  } }, "Reload config from file");
  show(title("Config"), h("div", { class: "actions" }, btn), h("h2", {}, "Last reload"), last, h("h2", {}, "Running config (secrets masked)"), yaml);
  const load = async () => {
    let v;
    try { v = (await api("GET", "/api/config")).body; } catch (ex) { if (ex.status !== 401) yaml.replaceChildren(errorBox(ex)); return; }
    const lr = v.last_reload;
    if (!lr) last.replaceChildren(h("p", { class: "muted" }, "No reload since the relay started."));
    else {
      const rep = lr.report || {};
      last.replaceChildren(h("div", { class: "panel" }, h("dl", { class: "meta" },
        h("dt", {}, "Result"), h("dd", {}, badge(lr.ok ? "applied" : "refused"), " ", lr.ok ? "" : lr.error),
        h("dt", {}, "At"), h("dd", {}, when(lr.at)),
        lr.problems ? [h("dt", {}, "Problems"), h("dd", {}, h("ul", {}, lr.problems.map((p) => h("li", { class: "mono" }, p))))] : "",
        lr.ok ? [h("dt", {}, "Changes"), h("dd", {}, ["added", "removed", "changed", "restart_required"].filter((k) => rep[k] && rep[k].length)
          .map((k) => k.replace("_", " ") + ": " + rep[k].join(", ")).join(" · ") || "none")] : "")));
    }
    yaml.replaceChildren(h("p", { class: "muted" }, "From " + (v.file || "(not a file)")), h("pre", { class: "body", tabindex: "0", "aria-label": "Running config" }, v.yaml));
  };
  load();
}

// ---------- start ----------

async function start() {
  if (!token()) { loginPage(); return; }
  const who = (await api("GET", "/api/whoami")).body;
  state.who = who;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  for (const li of document.querySelectorAll("#nav [data-admin]")) li.hidden = who.role !== "admin";
  document.getElementById("who").textContent = who.role === "admin" ? "admin" : "portal " + who.portal + " · " + who.destinations.join(", ");
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => logout("You are signed out."));
  window.addEventListener("hashchange", route);
  start().catch((ex) => { if (ex.status !== 401) loginPage("Sign-in failed: " + ex.message); });
});
