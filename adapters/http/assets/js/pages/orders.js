// Orders: a virtualized blotter with filters, live from the stream, with
// cancel, modify and the event history from each row.

import { qs } from "../api.js";
import { attempt, dialog, field, fill, fmt, h, table, toast } from "../ui.js";
import { VirtualList } from "../vlist.js";

const OPEN = new Set(["submitted", "accepted", "triggered", "pending_update", "pending_cancel", "partially_filled"]);
const STATUSES = ["initialized", "denied", "submitted", "accepted", "rejected", "canceled", "expired", "triggered", "pending_update", "pending_cancel", "partially_filled", "filled"];
// Events that only move an order to a known status.
const STATUS_OF = {
  "order.denied": "denied",
  "order.submitted": "submitted",
  "order.accepted": "accepted",
  "order.rejected": "rejected",
  "order.canceled": "canceled",
  "order.expired": "expired",
  "order.triggered": "triggered",
  "order.pending_update": "pending_update",
  "order.pending_cancel": "pending_cancel",
};
const MAX_ROWS = 10000;
const ROW_H = 32;

export function mount(root, ctx) {
  const f = {
    status: h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "any"), h("option", { value: "open" }, "open"), STATUSES.map((s) => h("option", { value: s }, s))),
    instrument: h("input", { id: "f-instrument", name: "instrument_id", placeholder: "e.g. ACME.SIM", size: 14 }),
    strategy: h("input", { id: "f-strategy", name: "strategy_id", size: 12 }),
    from: h("input", { id: "f-from", name: "from", type: "datetime-local" }),
    to: h("input", { id: "f-to", name: "to", type: "datetime-local" }),
    user: ctx.isAdmin ? h("input", { id: "f-user", name: "user_id", size: 10, placeholder: "all users" }) : null,
  };
  const count = h("span", { class: "muted", id: "orders-count", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const filters = h(
    "form",
    { class: "filters", id: "orders-filters", "aria-label": "Filter orders" },
    field("Status", f.status),
    field("Instrument", f.instrument),
    field("Strategy", f.strategy),
    field("From", f.from),
    field("To", f.to),
    f.user ? field("User", f.user) : null,
    h("button", { type: "submit" }, "Apply"),
  );
  const cols = ["Time", "User", "Client id", "Instrument", "Side", "Type", "Qty", "Price", "Filled", "Avg px", "Status", "Actions"];
  const head = h("div", { class: "vhead", role: "row" }, cols.map((c) => h("div", { role: "columnheader" }, c)));
  const scroller = h("div", { class: "vscroll", id: "blotter", tabindex: "0", "aria-label": "Orders, newest first" });
  const grid = h("div", { class: "vgrid table-wrap", role: "table", "aria-label": "Orders", "aria-rowcount": "1" }, head, scroller);

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Orders"), count),
    ctx.canWrite ? newOrderForm(ctx) : null,
    filters,
    error,
    grid,
  );

  let items = [];
  const byId = new Map();
  const list = new VirtualList(
    scroller,
    ROW_H,
    () => {
      // Every cell and control is made once per pooled row and then only updated.
      const cells = cols.map(() => h("div", { role: "cell" }));
      for (const i of [6, 7, 8, 9]) cells[i].className = "num";
      const side = h("span");
      cells[4].append(side);
      const badge = h("span", { class: "badge" });
      cells[10].append(badge);
      const cancel = h("button", { type: "button", class: "small danger", "data-action": "cancel" }, "Cancel");
      const modify = h("button", { type: "button", class: "small", "data-action": "modify" }, "Modify");
      const history = h("button", { type: "button", class: "small", "data-action": "history" }, "History");
      cells[11].append(cancel, modify, history);
      const row = h("div", { class: "vrow" }, cells);
      row._parts = { side, badge, cancel, modify, history };
      return row;
    },
    (row, o) => renderRow(row, o),
  );

  // Writes only what changed: a recycled row often keeps some of its values.
  function text(el, v) {
    if (el._v !== v) {
      el._v = v;
      el.textContent = v;
    }
  }

  function renderRow(row, o) {
    const c = row.children;
    const p = row._parts;
    if (row.dataset.id !== o.id) {
      row.dataset.id = o.id;
      const cid = o.client_order_id;
      p.cancel.setAttribute("aria-label", `Cancel order ${cid}`);
      p.modify.setAttribute("aria-label", `Modify order ${cid}`);
      p.history.setAttribute("aria-label", `History of order ${cid}`);
      c[0].title = o.created_at;
    }
    if (row.dataset.status !== o.status) row.dataset.status = o.status;
    if (o._time === undefined) o._time = fmt.time(o.created_at);
    text(c[0], o._time);
    text(c[1], o.user_id);
    text(c[2], o.client_order_id);
    text(c[3], o.instrument_id);
    const buy = o.side === "buy";
    if (p.side._buy !== buy) {
      p.side._buy = buy;
      p.side.className = buy ? "side-buy" : "side-sell";
      p.side.textContent = buy ? "▲ BUY" : "▼ SELL";
    }
    text(c[5], o.type);
    text(c[6], o.quantity);
    text(c[7], o.price || (o.trigger_price ? `@${o.trigger_price}` : "mkt"));
    text(c[8], o.filled_qty);
    text(c[9], o.avg_px || "–");
    if (p.badge._status !== o.status) {
      p.badge._status = o.status;
      p.badge.className = `badge ${o.status === "filled" ? "ok" : o.status === "rejected" || o.status === "denied" ? "bad" : ""}`;
      p.badge.textContent = o.status.replace("_", " ");
    }
    const reason = o.reason || "";
    if (p.badge.title !== reason) p.badge.title = reason;
    const open = OPEN.has(o.status);
    const canCancel = ctx.canWrite && open;
    const canModify = canCancel && o.type !== "market";
    if (p.cancel.hidden === canCancel) p.cancel.hidden = !canCancel;
    if (p.modify.hidden === canModify) p.modify.hidden = !canModify;
  }

  // One listener for every row's buttons (rows are recycled).
  scroller.addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-action]");
    if (!btn || btn.hidden) return;
    const row = btn.closest(".vrow");
    const o = row && byId.get(row.dataset.id);
    if (!o) return;
    if (btn.dataset.action === "cancel") cancel(o);
    else if (btn.dataset.action === "modify") modify(o);
    else history(o);
  });

  function query() {
    const p = {
      instrument_id: f.instrument.value.trim(),
      strategy_id: f.strategy.value.trim(),
      from: f.from.value ? new Date(f.from.value).toISOString() : "",
      to: f.to.value ? new Date(f.to.value).toISOString() : "",
      user_id: f.user ? f.user.value.trim() : "",
    };
    if (f.status.value && f.status.value !== "open") p.status = f.status.value;
    return p;
  }

  function matches(o) {
    const p = query();
    const st = f.status.value;
    if (st === "open" && !OPEN.has(o.status)) return false;
    if (st && st !== "open" && o.status !== st) return false;
    if (p.instrument_id && o.instrument_id !== p.instrument_id) return false;
    if (p.strategy_id && o.strategy_id !== p.strategy_id) return false;
    if (p.user_id && o.user_id !== p.user_id) return false;
    if (p.to) return false; // a bounded window does not grow live
    return true;
  }

  let loading = 0;
  async function load() {
    const my = ++loading;
    error.textContent = "";
    count.textContent = "loading…";
    const p = query();
    const rows = [];
    let cursor = "";
    try {
      do {
        const page = await ctx.api("GET", `/api/v1/orders${qs({ ...p, limit: 500, cursor })}`);
        if (my !== loading) return;
        for (const o of page.items) if (f.status.value !== "open" || OPEN.has(o.status)) rows.push(o);
        cursor = page.next_cursor || "";
      } while (cursor && rows.length < MAX_ROWS);
    } catch (e) {
      if (my === loading) {
        error.textContent = e.message;
        count.textContent = "";
      }
      return;
    }
    items = rows;
    byId.clear();
    for (const o of items) byId.set(o.id, o);
    list.setItems(items);
    showCount();
  }

  function showCount() {
    count.textContent = `${items.length.toLocaleString()} orders`;
    grid.setAttribute("aria-rowcount", String(items.length + 1));
  }

  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });

  // Refetches of single orders whose new state needs exact arithmetic (fills, amendments).
  const stale = new Set();
  let fetching = false;
  async function refetch() {
    if (fetching) return;
    fetching = true;
    try {
      while (stale.size) {
        const ids = [...stale].slice(0, 8);
        for (const id of ids) stale.delete(id);
        await Promise.all(
          ids.map((id) =>
            ctx
              .api("GET", `/api/v1/orders/${id}`)
              .then((o) => replace(o))
              .catch(() => {}),
          ),
        );
      }
    } finally {
      fetching = false;
    }
  }

  function replace(o) {
    const old = byId.get(o.id);
    if (!old) return;
    Object.assign(old, o);
    list.refresh();
  }

  const off = ctx.stream.on((e) => {
    if (e.type === "reconnected") {
      load();
      return;
    }
    if (e.aggregate_type !== "order" || !e.event_type) return;
    const d = (e.payload && e.payload.data) || {};
    if (e.event_type === "order.initialized" && d.order) {
      const o = { ...d.order, leaves_qty: d.order.quantity };
      if (!byId.has(o.id) && matches(o)) {
        byId.set(o.id, o);
        items.unshift(o);
        if (items.length > MAX_ROWS) byId.delete(items.pop().id);
        // Keep the rows in view where they are while new orders arrive on top.
        if (scroller.scrollTop > 0) scroller.scrollTop += ROW_H;
        list.refresh();
        showCount();
      }
      return;
    }
    const o = byId.get(e.aggregate_id);
    if (!o) return;
    const status = STATUS_OF[e.event_type];
    if (status) {
      o.status = status;
      if (e.event_type === "order.denied" || e.event_type === "order.rejected") o.reason = d.reason;
      list.refresh();
    } else {
      stale.add(o.id);
      refetch();
    }
  });

  async function cancel(o) {
    await attempt(async () => {
      const r = await ctx.api("POST", `/api/v1/orders/${o.id}/cancel${qs({ user_id: ctx.isAdmin ? o.user_id : "" })}`);
      if (r && r.id) replace(r);
    }, `Cancel sent for ${o.client_order_id}`);
  }

  async function modify(o) {
    const qty = h("input", { name: "quantity", value: o.quantity, inputmode: "decimal", required: true });
    const px = h("input", { name: "price", value: o.price || "", inputmode: "decimal" });
    const data = await dialog(`Modify ${o.client_order_id}`, [field("Quantity", qty), o.price ? field("Price", px) : null], { submit: "Modify" });
    if (!data) return;
    const body = {};
    if (data.get("quantity") !== o.quantity) body.quantity = data.get("quantity");
    if (o.price && data.get("price") !== o.price) body.price = data.get("price");
    if (!Object.keys(body).length) return;
    await attempt(async () => {
      const r = await ctx.api("PATCH", `/api/v1/orders/${o.id}`, body);
      if (r && r.id) replace(r);
    }, `Modify sent for ${o.client_order_id}`);
  }

  async function history(o) {
    const body = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
    const shown = dialog(`History of ${o.client_order_id}`, [body], { submit: "Close" });
    try {
      const events = await ctx.api("GET", `/api/v1/orders/${o.id}/events`);
      const rows = Array.isArray(events) ? events : events.items || [];
      fill(
        body,
        table(
          [
            { label: "#", num: true, cell: (r) => String((r.event || r).sequence) },
            { label: "Time", cell: (r) => fmt.time((r.event || r).occurred_at) },
            { label: "Event", cell: (r) => (r.event || r).event_type },
            { label: "Details", cell: (r) => details(r.event || r) },
          ],
          rows,
        ),
      );
    } catch (e) {
      fill(body, h("p", { class: "error" }, e.message));
    }
    await shown;
  }

  load();
  return () => {
    off();
    list.destroy();
  };
}

function details(e) {
  const d = (e.payload && e.payload.data) || {};
  if (d.fill) return `${d.fill.quantity} @ ${d.fill.price}`;
  if (d.reason) return String(d.reason);
  if (d.order) return `${d.order.side} ${d.order.quantity} ${d.order.price || ""}`;
  const rest = Object.entries(d).filter(([k, v]) => k !== "type" && v !== null);
  return rest.map(([k, v]) => `${k}: ${v}`).join(", ");
}

function newOrderForm(ctx) {
  const inputs = {
    instrument_id: h("input", { name: "instrument_id", required: true, size: 14, placeholder: "ACME.SIM", id: "no-instrument" }),
    side: h("select", { name: "side", id: "no-side" }, h("option", { value: "buy" }, "▲ buy"), h("option", { value: "sell" }, "▼ sell")),
    type: h("select", { name: "type", id: "no-type" }, ["limit", "market", "stop_market", "stop_limit"].map((t) => h("option", { value: t }, t))),
    quantity: h("input", { name: "quantity", required: true, size: 8, inputmode: "decimal", id: "no-qty" }),
    price: h("input", { name: "price", size: 10, inputmode: "decimal", id: "no-price" }),
    time_in_force: h("select", { name: "time_in_force", id: "no-tif" }, ["gtc", "day", "ioc", "fok"].map((t) => h("option", { value: t }, t))),
  };
  const form = h(
    "form",
    { class: "filters", id: "new-order", "aria-label": "New order" },
    field("Instrument", inputs.instrument_id),
    field("Side", inputs.side),
    field("Type", inputs.type),
    field("Quantity", inputs.quantity),
    field("Price", inputs.price),
    field("TIF", inputs.time_in_force),
    h("button", { type: "submit", class: "primary" }, "Submit order"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      client_order_id: `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`,
      instrument_id: inputs.instrument_id.value.trim(),
      side: inputs.side.value,
      type: inputs.type.value,
      quantity: inputs.quantity.value.trim(),
      time_in_force: inputs.time_in_force.value,
    };
    if (inputs.price.value.trim()) {
      if (body.type.startsWith("stop")) body.trigger_price = inputs.price.value.trim();
      if (body.type === "limit" || body.type === "stop_limit") body.price = inputs.price.value.trim();
    }
    const o = await attempt(() => ctx.api("POST", "/api/v1/orders", body));
    if (o) {
      toast(o.status === "denied" ? `Order denied: ${o.reason}` : `Order ${o.client_order_id} ${o.status}`, o.status === "denied" ? "error" : "info");
    }
  });
  return h("details", { class: "card", style: "margin-bottom:12px" }, h("summary", {}, "New order"), form);
}
