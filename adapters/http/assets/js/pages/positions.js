// Positions and PnL: positions with marks updating with quotes (from the
// stream), balances, and an equity and drawdown chart.

import { qs } from "../api.js";
import { fill, field, fmt, h, table, throttle } from "../ui.js";

export function mount(root, ctx) {
  const userInput = ctx.isAdmin ? h("input", { id: "pos-user", name: "user_id", size: 12, placeholder: "user id" }) : null;
  const error = h("p", { class: "error", role: "alert" });
  const balances = h("div", { id: "balances" });
  const positions = h("div", { id: "positions" });
  const chart = h("div", { id: "equity-chart" });
  const picker = userInput
    ? h("form", { class: "filters", id: "pos-filter" }, field("User", userInput), h("button", { type: "submit" }, "Show"))
    : null;
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Positions & PnL")),
    picker,
    error,
    h("section", { class: "card", "aria-labelledby": "h-bal" }, h("h2", { id: "h-bal" }, "Balances"), balances),
    h("section", { class: "card section", "aria-labelledby": "h-pos" }, h("h2", { id: "h-pos" }, "Positions"), positions),
    h("section", { class: "card section", "aria-labelledby": "h-eq" }, h("h2", { id: "h-eq" }, "Equity and drawdown"), chart),
  );

  let user = ctx.isAdmin ? "" : ctx.user.id;
  let marks = new Map();
  let rows = [];
  let stopQuotes = () => {};
  const equity = []; // [{t, equity, hwm}]

  async function pickDefault() {
    // An admin sees the first trader with a position until choosing another.
    try {
      const us = await ctx.api("GET", "/api/v1/users?limit=50");
      const list = Array.isArray(us) ? us : us.items || [];
      const t = list.find((u) => u.role === "trader") || list[0];
      if (t) {
        user = t.id;
        userInput.value = t.id;
      }
    } catch (e) {
      error.textContent = e.message;
    }
  }

  function userQs() {
    return ctx.isAdmin ? qs({ user_id: user }) : "";
  }

  async function load() {
    if (!user) return;
    try {
      const [acct, pos] = await Promise.all([ctx.api("GET", `/api/v1/account${userQs()}`), ctx.api("GET", `/api/v1/positions${userQs()}`)]);
      error.textContent = "";
      drawBalances(acct);
      rows = (Array.isArray(pos) ? pos : pos.items || []).filter((p) => p.side !== "flat" || p.realized_pnl !== "0");
      drawPositions();
      const instruments = [...new Set(rows.map((p) => p.instrument_id))];
      stopQuotes();
      stopQuotes = ctx.stream.watchQuotes(instruments);
      // Chart the currency that is trading: the one with PnL, else USD, else the first.
      const active = (b) => !/^-?0*(\.0*)?$/.test(b.realized_pnl) || !/^-?0*(\.0*)?$/.test(b.unrealized_pnl);
      const main = acct.balances.find(active) || acct.balances.find((b) => b.currency === "USD") || acct.balances[0];
      if (main) {
        equity.push({ t: Date.now(), equity: Number(main.equity), hwm: Number(acct.high_water_mark) || Number(main.equity) });
        if (equity.length > 600) equity.shift();
        drawChart(main.currency);
      }
    } catch (e) {
      error.textContent = e.message;
    }
  }
  const reload = throttle(load, 1000);

  function drawBalances(a) {
    fill(
      balances,
      table(
        [
          { label: "Currency", cell: (b) => b.currency },
          { label: "Total", num: true, cell: (b) => b.total },
          { label: "Reserved", num: true, cell: (b) => b.reserved },
          { label: "Free", num: true, cell: (b) => b.free },
          { label: "Equity", num: true, cell: (b) => b.equity },
          { label: "Realized PnL", num: true, cell: (b) => fmt.signed(b.realized_pnl) },
          { label: "Unrealized PnL", num: true, cell: (b) => fmt.signed(b.unrealized_pnl) },
        ],
        a.balances,
        { empty: "No balances." },
      ),
      h("p", { class: "muted" }, `Trading state: ${a.trading_state} · open orders: ${a.open_orders} · drawdown: ${a.drawdown}`),
    );
  }

  function drawPositions() {
    fill(
      positions,
      table(
        [
          { label: "Instrument", cell: (p) => p.instrument_id },
          { label: "Side", cell: (p) => (p.side === "flat" ? "flat" : fmt.side(p.side)) },
          { label: "Quantity", num: true, cell: (p) => p.quantity },
          { label: "Avg open", num: true, cell: (p) => fmt.dec(p.avg_open_price) },
          { label: "Mark", num: true, cell: (p) => h("span", { "data-mark": p.instrument_id }, marks.get(p.instrument_id) || fmt.dec(p.mark)) },
          { label: "Market value", num: true, cell: (p) => p.market_value },
          { label: "Unrealized", num: true, cell: (p) => fmt.signed(p.unrealized_pnl) },
          { label: "Realized", num: true, cell: (p) => fmt.signed(p.realized_pnl) },
          { label: "Commissions", num: true, cell: (p) => p.commissions },
        ],
        rows,
        { empty: "No positions." },
      ),
    );
  }

  function drawChart(currency) {
    const w = 600;
    const hgt = 180;
    if (equity.length < 2) {
      fill(chart, h("p", { class: "muted" }, "The chart fills in as equity changes."));
      return;
    }
    const vals = equity.flatMap((e) => [e.equity, e.hwm]);
    const lo = Math.min(...vals);
    const hi = Math.max(...vals);
    const span = hi - lo || 1;
    const x = (i) => (i / (equity.length - 1)) * w;
    const y = (v) => hgt - 10 - ((v - lo) / span) * (hgt - 20);
    const line = equity.map((e, i) => `${x(i).toFixed(1)},${y(e.equity).toFixed(1)}`).join(" ");
    const dd = equity.map((e, i) => `${x(i).toFixed(1)},${y(e.hwm).toFixed(1)}`).join(" ") + " " + [...equity].map((e, i) => [i, e]).reverse().map(([i, e]) => `${x(i).toFixed(1)},${y(e.equity).toFixed(1)}`).join(" ");
    const last = equity[equity.length - 1];
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Equity ${last.equity} ${currency}, drawdown ${(last.hwm - last.equity).toFixed(2)} from the high-water mark`);
    const area = document.createElementNS(ns, "polygon");
    area.setAttribute("class", "dd");
    area.setAttribute("points", dd);
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("class", "equity");
    pl.setAttribute("points", line);
    svg.append(area, pl);
    fill(chart, svg, h("p", { class: "muted" }, `Line: equity (${currency}); shaded: drawdown below the high-water mark. Since this page opened.`));
  }

  const off = ctx.stream.on((e) => {
    if (e.type === "quote") {
      if (!rows.some((p) => p.instrument_id === e.instrument_id)) return;
      marks.set(e.instrument_id, e.mid);
      for (const el of positions.querySelectorAll(`[data-mark="${CSS.escape(e.instrument_id)}"]`)) el.textContent = e.mid;
      reload(); // unrealized PnL and equity, computed exactly by the server
      return;
    }
    if (e.type === "reconnected") return reload();
    if (!e.event_type || (user && e.user_id !== user)) return;
    if (e.aggregate_type === "position" || e.aggregate_type === "account") reload();
  });

  if (picker) {
    picker.addEventListener("submit", (e) => {
      e.preventDefault();
      user = userInput.value.trim();
      equity.length = 0;
      marks = new Map();
      load();
    });
  }
  (ctx.isAdmin ? pickDefault() : Promise.resolve()).then(load);
  return () => {
    off();
    stopQuotes();
  };
}
