// Users (admins): create, enable/disable, limits, trading state, password,
// and the kill switch behind a confirmation.

import { qs } from "../api.js";
import { attempt, confirmAction, dialog, field, fill, h, table, throttle } from "../ui.js";

const LIMITS = ["max_order_notional", "max_open_orders", "max_position", "max_daily_loss", "max_orders_per_second"];
const STATES = ["active", "reduce_only", "halted"];

export function mount(root, ctx) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { id: "users" }, h("p", { class: "muted" }, "Loading…"));
  const create = h("button", { type: "button", id: "create-user", onclick: createUser }, "Create user");
  const kill = h("button", { type: "button", class: "danger", id: "global-kill", onclick: () => killSwitch(null) }, "Global kill switch…");
  fill(root, h("div", { class: "page-head" }, h("h1", {}, "Users"), h("div", { class: "row" }, create, kill)), error, body);

  let items = [];
  async function load() {
    try {
      const all = [];
      let cursor = "";
      do {
        const page = await ctx.api("GET", `/api/v1/users${qs({ limit: 500, cursor })}`);
        all.push(...page.items);
        cursor = page.next_cursor || "";
      } while (cursor && all.length < 5000);
      items = all;
      error.textContent = "";
      draw();
    } catch (e) {
      error.textContent = e.message;
    }
  }
  const reload = throttle(load, 1000);

  function draw() {
    fill(
      body,
      table(
        [
          { label: "Id", cell: (u) => u.id },
          { label: "Name", cell: (u) => u.name },
          { label: "Role", cell: (u) => u.role },
          { label: "Status", cell: (u) => h("span", { class: `badge ${u.status === "active" ? "ok" : "bad"}` }, u.status) },
          { label: "Trading", cell: (u) => h("span", { class: `badge ${u.trading_state === "active" ? "ok" : "warn"}` }, u.trading_state) },
          { label: "Limits", cell: (u) => LIMITS.filter((k) => u.limits && u.limits[k] !== null && u.limits[k] !== undefined).map((k) => `${k.replace("max_", "").replace(/_/g, " ")} ${u.limits[k]}`).join(", ") || h("span", { class: "muted" }, "none") },
          {
            label: "Actions",
            cell: (u) => [
              h("button", { type: "button", class: "small", onclick: () => patch(u, { status: u.status === "active" ? "disabled" : "active" }), "aria-label": `${u.status === "active" ? "Disable" : "Enable"} ${u.id}` }, u.status === "active" ? "Disable" : "Enable"),
              " ",
              h("button", { type: "button", class: "small", onclick: () => limits(u), "aria-label": `Limits of ${u.id}` }, "Limits"),
              " ",
              h("button", { type: "button", class: "small", onclick: () => password(u), "aria-label": `Set the password of ${u.id}` }, "Password"),
              " ",
              h("button", { type: "button", class: "small danger", onclick: () => killSwitch(u), "aria-label": `Kill switch for ${u.id}` }, "Kill switch…"),
            ],
          },
        ],
        items,
        { empty: "No users." },
      ),
    );
  }

  async function patch(u, change) {
    const r = await attempt(() => ctx.api("PATCH", `/api/v1/users/${encodeURIComponent(u.id)}`, change), `${u.id} updated`);
    if (r) {
      Object.assign(u, r);
      draw();
    }
  }

  async function createUser() {
    const data = await dialog(
      "Create user",
      [
        field("Id", h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}" })),
        field("Name", h("input", { name: "name", required: true })),
        field("Role", h("select", { name: "role" }, ["trader", "viewer", "admin"].map((r) => h("option", { value: r }, r)))),
        field("Password (optional, 10+ characters)", h("input", { name: "password", type: "password", autocomplete: "new-password" })),
      ],
      { submit: "Create" },
    );
    if (!data) return;
    const u = await attempt(() => ctx.api("POST", "/api/v1/users", { id: data.get("id"), name: data.get("name"), role: data.get("role") }), `User ${data.get("id")} created`);
    if (u && data.get("password")) {
      await attempt(() => ctx.api("PUT", `/api/v1/users/${encodeURIComponent(u.id)}/password`, { password: data.get("password") }), "Password set");
    }
    load();
  }

  async function limits(u) {
    const inputs = LIMITS.map((k) => field(k.replace(/_/g, " "), h("input", { name: k, value: u.limits && u.limits[k] !== null && u.limits[k] !== undefined ? u.limits[k] : "", inputmode: "decimal", placeholder: "unlimited" })));
    const data = await dialog(`Limits of ${u.id}`, inputs, { submit: "Save limits" });
    if (!data) return;
    const l = {};
    for (const k of LIMITS) {
      const v = String(data.get(k) || "").trim();
      if (v) l[k] = k === "max_open_orders" || k === "max_orders_per_second" ? Number(v) : v;
    }
    patch(u, { limits: l });
  }

  async function password(u) {
    const data = await dialog(`Password of ${u.id}`, [field("New password (10+ characters)", h("input", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password" }))], { submit: "Set password" });
    if (!data) return;
    await attempt(() => ctx.api("PUT", `/api/v1/users/${encodeURIComponent(u.id)}/password`, { password: data.get("password") }), `Password of ${u.id} set; their sessions were signed out`);
  }

  async function killSwitch(u) {
    const st = h("select", { name: "state" }, STATES.map((s) => h("option", { value: s, selected: s === "halted" }, s)));
    const data = await dialog(
      u ? `Kill switch for ${u.id}` : "Global kill switch",
      [
        h("p", {}, u ? `Set ${u.id}'s trading state. Halted cancels nothing by itself but refuses new orders.` : "Set the trading state of every user."),
        field("Trading state", st),
        field("Reason (audited)", h("input", { name: "reason", required: true, size: 40 })),
      ],
      { submit: "Continue", danger: true },
    );
    if (!data) return;
    const target = u ? u.id : "EVERY user";
    if (!(await confirmAction("Confirm kill switch", `Set trading to "${data.get("state")}" for ${target}?`, "Yes, apply"))) return;
    await attempt(
      () => ctx.api("POST", "/api/v1/admin/kill-switch", { scope: u ? "user" : "global", user_id: u ? u.id : undefined, state: data.get("state"), reason: data.get("reason") }),
      "Kill switch applied",
    );
    load();
  }

  const off = ctx.stream.on((e) => {
    if (e.type === "reconnected" || e.aggregate_type === "user") reload();
  });
  load();
  return off;
}
