// Strategies and monitors: list, enable/disable, parameters, stats,
// restarts and the last error; refreshed when the stream reports a change.

import { qs } from "../api.js";
import { attempt, dialog, field, fill, fmt, h, table, throttle } from "../ui.js";

export function mount(root, ctx) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { id: "strategies" }, h("p", { class: "muted" }, "Loading…"));
  const userInput = ctx.isAdmin ? h("input", { id: "st-user", size: 12, placeholder: "all users" }) : null;
  const picker = userInput ? h("form", { class: "filters", id: "st-filter" }, field("User", userInput), h("button", { type: "submit" }, "Show")) : null;
  fill(root, h("div", { class: "page-head" }, h("h1", {}, "Strategies and monitors")), picker, error, body);

  let items = [];

  async function usersToShow() {
    if (!ctx.isAdmin) return [ctx.user.id];
    const one = userInput.value.trim();
    if (one) return [one];
    const page = await ctx.api("GET", "/api/v1/users?limit=100");
    return (page.items || []).map((u) => u.id);
  }

  // Strategies by user, in the order the users are shown.
  let shown = [];
  const byUser = new Map();

  function strategiesOf(u) {
    return ctx.api("GET", `/api/v1/strategies${ctx.isAdmin ? qs({ user_id: u }) : ""}`).then((l) => l.items);
  }

  function flatten() {
    items = shown.flatMap((u) => byUser.get(u) || []);
  }

  async function load() {
    try {
      const users = await usersToShow();
      const lists = await Promise.all(users.map(strategiesOf));
      shown = users;
      byUser.clear();
      users.forEach((u, i) => byUser.set(u, lists[i]));
      flatten();
      error.textContent = "";
      draw();
    } catch (e) {
      error.textContent = e.message;
    }
  }
  const reload = throttle(load, 1000);

  // Only the users whose strategies the stream says changed are read again.
  const stale = new Set();
  const refreshStale = throttle(async () => {
    const users = [...stale];
    stale.clear();
    try {
      const lists = await Promise.all(users.map(strategiesOf));
      users.forEach((u, i) => byUser.set(u, lists[i]));
      flatten();
      draw();
    } catch (e) {
      error.textContent = e.message;
    }
  }, 1000);

  function draw() {
    fill(
      body,
      table(
        [
          { label: "Strategy", cell: (s) => h("span", { title: s.id }, s.name, h("br"), h("span", { class: "muted mono" }, s.id)) },
          { label: "User", cell: (s) => s.user_id },
          { label: "Type", cell: (s) => s.type || s.strategy_type },
          { label: "Instruments", cell: (s) => s.instruments.join(", ") },
          { label: "Status", cell: (s) => h("span", { class: `badge ${s.status === "enabled" ? "ok" : ""}`, "data-status": s.id }, s.status) },
          { label: "Orders", num: true, cell: (s) => fmt.count(s.stats.orders) },
          { label: "Fills", num: true, cell: (s) => fmt.count(s.stats.fills) },
          { label: "PnL", num: true, cell: (s) => fmt.signed(s.stats.realized_pnl) },
          { label: "Win rate", num: true, cell: (s) => (s.stats.win_rate === null || s.stats.win_rate === undefined ? "–" : `${(Number(s.stats.win_rate) * 100).toFixed(1)} %`) },
          { label: "Restarts", num: true, cell: (s) => String(s.restarts || 0) },
          { label: "Last error", cell: (s) => (s.last_error ? h("span", { title: fmt.dateTime(s.last_restart_at) }, s.last_error) : h("span", { class: "muted" }, "none")) },
          {
            label: "Actions",
            cell: (s) =>
              ctx.canWrite
                ? [
                    h(
                      "button",
                      { type: "button", class: "small", "data-toggle": s.id, onclick: () => toggle(s), "aria-label": `${s.status === "enabled" ? "Disable" : "Enable"} ${s.name}` },
                      s.status === "enabled" ? "Disable" : "Enable",
                    ),
                    " ",
                    h("button", { type: "button", class: "small", onclick: () => params(s), "aria-label": `Parameters of ${s.name}` }, "Parameters"),
                  ]
                : h("button", { type: "button", class: "small", onclick: () => params(s, true), "aria-label": `Parameters of ${s.name}` }, "Parameters"),
          },
        ],
        items,
        { empty: "No strategies." },
      ),
    );
  }

  async function toggle(s) {
    const status = s.status === "enabled" ? "disabled" : "enabled";
    const r = await attempt(
      () => ctx.api("PATCH", `/api/v1/strategies/${encodeURIComponent(s.id)}${ctx.isAdmin ? qs({ user_id: s.user_id }) : ""}`, { status }),
      `${s.name} ${status}`,
    );
    if (r) {
      Object.assign(s, r);
      draw();
    }
  }

  async function params(s, readOnly) {
    const text = h("textarea", { name: "params", rows: 8, readonly: readOnly }, JSON.stringify(s.params, null, 2));
    const data = await dialog(`Parameters of ${s.name}`, [field("Parameters (JSON)", text)], { submit: readOnly ? "Close" : "Save" });
    if (!data || readOnly) return;
    let parsed;
    try {
      parsed = JSON.parse(data.get("params"));
    } catch (e) {
      return attempt(() => Promise.reject(new Error(`The parameters are not valid JSON: ${e.message}`)));
    }
    const r = await attempt(
      () => ctx.api("PATCH", `/api/v1/strategies/${encodeURIComponent(s.id)}${ctx.isAdmin ? qs({ user_id: s.user_id }) : ""}`, { params: parsed }),
      `${s.name} updated`,
    );
    if (r) {
      Object.assign(s, r);
      draw();
    }
  }

  const off = ctx.stream.on((e) => {
    if (e.type === "reconnected") return reload();
    if (!e.event_type) return;
    if (e.event_type === "monitor.restarted" || e.aggregate_type === "strategy" || e.event_type === "order.filled" || e.event_type === "order.initialized") {
      if (byUser.get(e.user_id)?.length) {
        stale.add(e.user_id);
        refreshStale();
      }
    }
  });
  if (picker) picker.addEventListener("submit", (e) => (e.preventDefault(), load()));
  load();
  return off;
}
