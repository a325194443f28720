// Alerts: firing, pending and resolved; acknowledge; silences with a matcher form.

import { qs } from "../api.js";
import { attempt, confirmAction, dialog, field, fill, fmt, h, table, throttle } from "../ui.js";

export function mount(root, ctx) {
  const state = h("select", { id: "al-state" }, ["firing", "pending", "resolved"].map((s) => h("option", { value: s }, s)));
  const error = h("p", { class: "error", role: "alert" });
  const list = h("div", { id: "alerts" }, h("p", { class: "muted" }, "Loading…"));
  const silences = h("div", { id: "silences" });
  const newSilence = ctx.canWrite ? h("button", { type: "button", id: "new-silence", onclick: () => silenceForm({}) }, "New silence") : null;
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Alerts"), newSilence),
    h("div", { class: "filters" }, field("State", state)),
    error,
    h("section", { class: "card", "aria-labelledby": "h-alerts" }, h("h2", { id: "h-alerts" }, "Alerts"), list),
    h("section", { class: "card section", "aria-labelledby": "h-sil" }, h("h2", { id: "h-sil" }, "Silences"), silences),
  );

  async function load() {
    try {
      const [page, sil] = await Promise.all([
        ctx.api("GET", `/api/v1/alerts${qs({ state: state.value, limit: 200 })}`),
        ctx.api("GET", "/api/v1/silences"),
      ]);
      error.textContent = "";
      drawAlerts(page.items);
      drawSilences(Array.isArray(sil) ? sil : sil.items || []);
    } catch (e) {
      error.textContent = e.status === 503 ? "Alerting is not running on this server." : e.message;
      fill(list);
    }
  }
  const reload = throttle(load, 500);

  function drawAlerts(items) {
    fill(
      list,
      table(
        [
          { label: "Severity", cell: (a) => h("span", { class: `sev-${a.severity}` }, a.severity === "critical" ? "■ critical" : a.severity === "warning" ? "▲ warning" : "● info") },
          { label: "Rule", cell: (a) => a.rule },
          { label: "User", cell: (a) => a.user_id || "–" },
          { label: "Summary", cell: (a) => (a.annotations && (a.annotations.summary || a.annotations.description)) || "" },
          { label: "Value", num: true, cell: (a) => a.value || "–" },
          { label: "Since", cell: (a) => fmt.dateTime(a.started_at || a.active_at || a.created_at) },
          { label: "State", cell: (a) => [a.state, a.silenced ? " · silenced" : "", a.inhibited ? " · inhibited" : ""].join("") },
          {
            label: "Ack",
            cell: (a) =>
              a.acknowledged
                ? h("span", { "data-acked": a.id }, `✓ by ${a.acknowledged_by || "?"}`)
                : ctx.canWrite && a.state !== "resolved"
                  ? h("button", { type: "button", class: "small", "data-ack": a.id, onclick: () => ack(a), "aria-label": `Acknowledge ${a.rule}` }, "Ack")
                  : "–",
          },
          {
            label: "",
            cell: (a) =>
              ctx.canWrite
                ? h("button", { type: "button", class: "small", onclick: () => silenceForm(a.labels || {}), "aria-label": `Silence ${a.rule}` }, "Silence…")
                : "",
          },
        ],
        items,
        { empty: `No ${state.value} alerts.` },
      ),
    );
  }

  function drawSilences(items) {
    fill(
      silences,
      table(
        [
          { label: "Matchers", cell: (s) => s.matchers.map((m) => `${m.name}${m.op}"${m.value}"`).join(", ") },
          { label: "State", cell: (s) => s.state },
          { label: "Ends", cell: (s) => fmt.dateTime(s.ends_at) },
          { label: "By", cell: (s) => s.created_by },
          { label: "Comment", cell: (s) => s.comment },
          {
            label: "",
            cell: (s) =>
              ctx.canWrite && s.state !== "expired"
                ? h("button", { type: "button", class: "small danger", onclick: () => expire(s) }, "Expire")
                : "",
          },
        ],
        items.filter((s) => s.state !== "expired"),
        { empty: "No active silences." },
      ),
    );
  }

  async function ack(a) {
    const r = await attempt(() => ctx.api("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, {}), `Acknowledged ${a.rule}`);
    if (r !== undefined) load();
  }

  async function expire(s) {
    if (!(await confirmAction("Expire silence", "Alerts it silences will notify again."))) return;
    const r = await attempt(() => ctx.api("DELETE", `/api/v1/silences/${encodeURIComponent(s.id)}`), "Silence expired");
    if (r !== undefined) load();
  }

  async function silenceForm(labels) {
    const rows = h("div", { id: "matchers" });
    function addRow(name = "", op = "=", value = "") {
      const n = rows.children.length + 1;
      rows.append(
        h(
          "div",
          { class: "row" },
          field(`Label ${n}`, h("input", { name: "m_name", value: name, required: true, size: 12 })),
          field("Match", h("select", { name: "m_op" }, ["=", "!=", "=~", "!~"].map((o) => h("option", { value: o, selected: o === op }, o)))),
          field("Value", h("input", { name: "m_value", value, required: true, size: 16 })),
        ),
      );
    }
    const preset = Object.entries(labels).filter(([k]) => ["alertname", "rule", "user_id", "instrument_id", "severity"].includes(k));
    if (preset.length) preset.forEach(([k, v]) => addRow(k, "=", v));
    else addRow("rule");
    const more = h("button", { type: "button", class: "small", onclick: () => addRow() }, "Add matcher");
    const data = await dialog(
      "New silence",
      [
        rows,
        more,
        field("Duration", h("input", { name: "duration", value: "2h", required: true, size: 8 })),
        field("Comment", h("input", { name: "comment", required: true, size: 40 })),
      ],
      { submit: "Create silence" },
    );
    if (!data) return;
    const names = data.getAll("m_name");
    const ops = data.getAll("m_op");
    const values = data.getAll("m_value");
    const body = {
      matchers: names.map((name, i) => ({ name, op: ops[i], value: values[i] })),
      duration: data.get("duration"),
      comment: data.get("comment"),
    };
    const r = await attempt(() => ctx.api("POST", "/api/v1/silences", body), "Silence created");
    if (r) load();
  }

  const off = ctx.stream.on((e) => {
    if (e.type === "reconnected" || (e.event_type && e.event_type.startsWith("alert."))) reload();
  });
  state.addEventListener("change", load);
  load();
  return off;
}
