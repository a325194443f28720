// Overview: component health, live throughput from the stream, users,
// monitors and strategies, alerts firing, relay lag and dead letters.

import { qs } from "../api.js";
import { fill, fmt, h, sparkline, throttle } from "../ui.js";

const WINDOW = 60; // seconds of throughput kept

// Throughput and the latest events, counted from the stream from sign-in on
// (not only while this page is open), one bucket per second.
const live = { orders: new Array(WINDOW).fill(0), fills: new Array(WINDOW).fill(0), now: 0, since: 0, recent: [], stream: null, off: null };

function roll() {
  const t = Math.floor(Date.now() / 1000);
  if (!live.now) live.now = t;
  while (live.now < t) {
    live.now++;
    live.orders.push(0);
    live.orders.shift();
    live.fills.push(0);
    live.fills.shift();
  }
}

/** Per second over the last 5 complete seconds (fewer right after sign-in). */
function rate(b) {
  const secs = Math.max(1, Math.min(5, Math.floor(Date.now() / 1000) - live.since));
  const s = b.slice(-1 - secs, -1);
  return s.reduce((a, v) => a + v, 0) / secs;
}

/** Starts counting `stream`'s events (once per sign-in). */
export function track(stream) {
  if (live.stream === stream) return;
  if (live.off) live.off();
  live.stream = stream;
  live.since = Math.floor(Date.now() / 1000);
  live.orders.fill(0);
  live.fills.fill(0);
  live.recent = [];
  live.off = stream.on((e) => {
    if (!e.event_type) return;
    roll();
    if (e.event_type === "order.initialized") live.orders[WINDOW - 1]++;
    if (e.event_type === "order.filled") live.fills[WINDOW - 1]++;
    live.recent.unshift(e);
    if (live.recent.length > 30) live.recent.pop();
  });
}

/** Forgets what was counted (sign-out). */
export function untrack() {
  if (live.off) live.off();
  live.off = null;
  live.stream = null;
  live.recent = [];
}

export function mount(root, ctx) {
  const health = h("div", { id: "ov-health" }, h("p", { class: "muted" }, "Checking…"));
  const ordersRate = h("div", { class: "metric", id: "ov-orders-rate" }, "0");
  const fillsRate = h("div", { class: "metric", id: "ov-fills-rate" }, "0");
  const ordersSpark = h("div");
  const fillsSpark = h("div");
  const system = h("div", { id: "ov-system" });
  const firing = h("div", { class: "metric", id: "ov-alerts-firing" }, "–");
  const relay = h("div", { id: "ov-relay" });
  const feed = h("ol", { class: "feed", id: "ov-feed", "aria-label": "Latest events" });
  const error = h("p", { class: "error", role: "alert" });

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Overview")),
    error,
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "ov-h-orders" }, h("h2", { id: "ov-h-orders" }, "Orders / s"), ordersRate, ordersSpark),
      h("section", { class: "card", "aria-labelledby": "ov-h-fills" }, h("h2", { id: "ov-h-fills" }, "Fills / s"), fillsRate, fillsSpark),
      h("section", { class: "card", "aria-labelledby": "ov-h-alerts" }, h("h2", { id: "ov-h-alerts" }, "Alerts firing"), firing, h("a", { href: "#/alerts" }, "See alerts")),
      h("section", { class: "card", "aria-labelledby": "ov-h-system" }, h("h2", { id: "ov-h-system" }, ctx.isAdmin ? "Platform" : "Account"), system),
    ),
    h(
      "div",
      { class: "grid", style: "margin-top:12px" },
      h("section", { class: "card", "aria-labelledby": "ov-h-health" }, h("h2", { id: "ov-h-health" }, "Health"), health),
      ctx.isAdmin ? h("section", { class: "card", "aria-labelledby": "ov-h-relay" }, h("h2", { id: "ov-h-relay" }, "Relay and dead letters"), relay) : null,
    ),
    h("section", { class: "card section", "aria-labelledby": "ov-h-feed" }, h("h2", { id: "ov-h-feed" }, "Live activity"), feed),
  );

  function drawRates() {
    roll();
    ordersRate.textContent = rate(live.orders).toFixed(1);
    fillsRate.textContent = rate(live.fills).toFixed(1);
    fill(ordersSpark, sparkline(live.orders, "orders per second, last minute"));
    fill(fillsSpark, sparkline(live.fills, "fills per second, last minute"));
  }
  const drawFeed = throttle(() => {
    fill(
      feed,
      live.recent.map((e) =>
        h("li", {}, h("time", { datetime: e.occurred_at }, fmt.time(e.occurred_at)), h("span", {}, describe(e))),
      ),
    );
  }, 250);

  const refreshAlerts = throttle(async () => {
    try {
      const page = await ctx.api("GET", `/api/v1/alerts${qs({ state: "firing", limit: 500 })}`);
      firing.textContent = `${page.items.length}${page.next_cursor ? "+" : ""}`;
    } catch (e) {
      firing.textContent = e.status === 503 ? "off" : "?";
    }
  }, 1000);

  const off = ctx.stream.on((e) => {
    if (e.type === "reconnected") {
      refreshAlerts();
      return;
    }
    if (!e.event_type) return;
    if (e.event_type.startsWith("alert.")) refreshAlerts();
    drawFeed();
  });

  // Each component's state; the reasons come with /status (admins only).
  function drawHealth(components) {
    fill(
      health,
      h(
        "dl",
        { class: "kv" },
        Object.entries(components || {}).flatMap(([name, c]) => [
          h("dt", {}, name),
          h("dd", {}, h("span", { class: `badge ${c.status === "ok" ? "ok" : c.status === "degraded" ? "warn" : "bad"}` }, c.status), c.error ? h("span", { class: "muted" }, ` ${c.error}`) : null),
        ]),
      ),
    );
  }

  // Health and platform figures are not on the stream: read every 5 s.
  async function poll() {
    try {
      const res = await fetch("/health/ready");
      const report = await res.json();
      drawHealth(report.components);
    } catch {
      fill(health, h("p", { class: "error" }, "The server cannot be reached."));
    }
    try {
      if (ctx.isAdmin) {
        const st = await ctx.api("GET", "/status");
        if (st.health) drawHealth(st.health);
        const mon = (st.components || {}).monitoring || {};
        fill(
          system,
          h(
            "dl",
            { class: "kv" },
            h("dt", {}, "Active users"), h("dd", { id: "ov-active-users" }, fmt.count(mon.active_users ?? st.owners)),
            h("dt", {}, "Monitors"), h("dd", { id: "ov-monitors" }, fmt.count(mon.running_monitors ?? st.monitors)),
            h("dt", {}, "Strategies running"), h("dd", { id: "ov-strategies" }, fmt.count(mon.running_strategies ?? st.strategies)),
            h("dt", {}, "Strategy restarts"), h("dd", {}, fmt.count(mon.restarts ?? 0)),
            h("dt", {}, "Instruments"), h("dd", {}, fmt.count(st.instruments)),
            h("dt", {}, "Trading"), h("dd", {}, st.trading_state),
            h("dt", {}, "Uptime"), h("dd", {}, `${Math.floor(st.uptime_secs / 60)} min`),
          ),
        );
        const r = (st.components || {}).relay;
        let dead = "–";
        try {
          const dl = await ctx.api("GET", "/api/v1/admin/dead-letters");
          dead = String(dl.items.length);
        } catch (e) {
          dead = e.status === 503 ? "no bus" : "?";
        }
        fill(
          relay,
          h(
            "dl",
            { class: "kv" },
            h("dt", {}, "Outbox backlog"), h("dd", { id: "ov-relay-lag" }, r ? String(r.pending ?? 0) : "no relay"),
            h("dt", {}, "Oldest unsent"), h("dd", {}, r && r.oldest_pending_seconds !== undefined ? `${Number(r.oldest_pending_seconds).toFixed(1)} s` : "–"),
            h("dt", {}, "Dead letters"), h("dd", { id: "ov-dead-letters" }, dead),
          ),
        );
      } else {
        const a = await ctx.api("GET", "/api/v1/account");
        fill(
          system,
          h(
            "dl",
            { class: "kv" },
            h("dt", {}, "Trading"), h("dd", {}, a.trading_state),
            h("dt", {}, "Open orders"), h("dd", {}, fmt.count(a.open_orders)),
            a.balances.flatMap((b) => [h("dt", {}, `Equity ${b.currency}`), h("dd", { class: "num" }, b.equity)]),
            h("dt", {}, "Drawdown"), h("dd", { class: "num" }, a.drawdown),
          ),
        );
      }
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
    }
  }

  drawRates();
  drawFeed();
  refreshAlerts();
  poll();
  const tick = setInterval(drawRates, 1000);
  const slow = setInterval(poll, 5000);
  return () => {
    off();
    clearInterval(tick);
    clearInterval(slow);
  };
}

/** One line for an event. */
export function describe(e) {
  const d = (e.payload && e.payload.data) || {};
  const who = e.user_id ? `${e.user_id}: ` : "";
  switch (e.event_type) {
    case "order.initialized": {
      const o = d.order || {};
      return `${who}new ${o.side || ""} ${o.quantity || ""} ${o.instrument_id || ""}${o.price ? " @ " + o.price : ""}`;
    }
    case "order.filled":
      return `${who}fill ${d.fill ? `${d.fill.quantity} @ ${d.fill.price} ${d.fill.instrument_id}` : ""}`;
    case "order.denied":
      return `${who}order denied (${d.reason})`;
    case "order.rejected":
      return `${who}order rejected (${d.reason})`;
    default:
      return `${who}${e.event_type} ${e.aggregate_id}`;
  }
}
