// Small DOM helpers shared by the pages.

/** Creates an element: h("button", {class: "x", onclick}, "text", child…). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A short message in the corner; errors stay longer. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : undefined }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

/** Runs an async action, showing its error as a readable message. */
export async function attempt(fn, ok) {
  try {
    const r = await fn();
    if (ok) toast(ok);
    return r;
  } catch (e) {
    toast(e.message || String(e), "error");
    return undefined;
  }
}

/**
 * A modal dialog with a form. `body` is a list of nodes; resolves with the
 * form's FormData when submitted, or null when cancelled.
 */
export function dialog(title, body, { submit = "OK", danger = false } = {}) {
  return new Promise((resolve) => {
    const error = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", {}, title),
      body,
      error,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", value: "cancel", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "submit", class: danger ? "danger" : "primary", value: "ok" }, submit),
      ),
    );
    const d = h("dialog", { "aria-label": title }, form);
    let done = false;
    function close(v) {
      if (done) return;
      done = true;
      d.close();
      d.remove();
      resolve(v);
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      close(new FormData(form));
    });
    d.addEventListener("cancel", () => close(null));
    document.body.append(d);
    d.showModal();
    const first = form.querySelector("input, select, textarea");
    if (first) first.focus();
  });
}

/** Asks for confirmation; resolves true or false. */
export async function confirmAction(title, text, label = "Confirm") {
  const r = await dialog(title, [h("p", {}, text)], { submit: label, danger: true });
  return r !== null;
}

/** A labelled input. */
export function field(label, input) {
  return h("label", {}, label, input);
}

/** Formatting: decimals stay the exact strings the API sent. */
export const fmt = {
  time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  },
  dateTime(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString([], { hour12: false });
  },
  /** Buy/sell as an arrow, a word and a colour (never colour alone). */
  side(side) {
    const buy = side === "buy" || side === "long";
    return h("span", { class: buy ? "side-buy" : "side-sell" }, buy ? "▲ " : "▼ ", side.toUpperCase());
  },
  /** A signed decimal string with an arrow and a colour. */
  signed(value) {
    if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "–");
    const s = String(value);
    const neg = s.startsWith("-");
    const zero = /^-?0*(\.0*)?$/.test(s);
    if (zero) return h("span", { class: "num" }, "0");
    return h("span", { class: `num ${neg ? "down" : "up"}` }, neg ? "▼ −" + s.slice(1) : "▲ +" + s);
  },
  dec(value) {
    return value === null || value === undefined ? "–" : String(value);
  },
  count(n) {
    return typeof n === "number" ? n.toLocaleString() : "–";
  },
};

/** Throttles `fn` to at most once per `ms`, trailing call kept. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const now = Date.now();
    const wait = last + ms - now;
    if (wait <= 0) {
      last = now;
      fn(...args);
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn(...args);
      }, wait);
    }
  };
}

/** A simple table: columns [{label, num, cell(row)}]. */
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : undefined }, c.label)));
  const body = rows.length
    ? rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : undefined }, c.cell(r)))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty))];
  return h(
    "div",
    { class: "table-wrap" },
    h("table", {}, caption ? h("caption", { class: "muted" }, caption) : null, h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** A sparkline of numbers. */
export function sparkline(values, label) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * 100},${40 - (v / max) * 36}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  return svg;
}
