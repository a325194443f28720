// The dashboard shell: sign-in, navigation by role, the live stream, routing.

import { ApiError, api, current, login, logout, onSession, useToken } from "./api.js";
import { Stream } from "./stream.js";
import { attempt, fill, h } from "./ui.js";
import * as overview from "./pages/overview.js";
import * as orders from "./pages/orders.js";
import * as positions from "./pages/positions.js";
import * as strategies from "./pages/strategies.js";
import * as alerts from "./pages/alerts.js";
import * as users from "./pages/users.js";

const PAGES = [
  { path: "overview", title: "Overview", page: overview },
  { path: "orders", title: "Orders", page: orders },
  { path: "positions", title: "Positions & PnL", page: positions },
  { path: "strategies", title: "Strategies", page: strategies },
  { path: "alerts", title: "Alerts", page: alerts },
  { path: "users", title: "Users", page: users, admin: true },
];

const app = document.getElementById("app");
const stream = new Stream();
let unmount = null;

function role() {
  const s = current();
  return s && s.user ? s.user.role : null;
}

/** What a page gets: the API, the stream and who is looking. */
function context() {
  const s = current();
  return {
    api,
    stream,
    user: s.user,
    isAdmin: s.user.role === "admin",
    canWrite: s.user.role === "admin" || s.user.role === "trader",
  };
}

function signInPage(message) {
  stream.stop();
  overview.untrack();
  if (unmount) unmount();
  unmount = null;
  const error = h("p", { class: "error", role: "alert", id: "signin-error" }, message || "");
  const user = h("input", { id: "user", name: "user", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary", id: "signin-submit" }, "Sign in");
  const form = h(
    "form",
    { id: "signin-form", "aria-describedby": "signin-error" },
    h("label", { for: "user" }, "User id", user),
    h("label", { for: "password" }, "Password", pass),
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await login(user.value.trim(), pass.value);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? "Wrong user id or password." : err.message;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  const token = h("textarea", { id: "token", name: "token", rows: 4, spellcheck: "false", required: true });
  const tokenForm = h(
    "form",
    { id: "token-form", hidden: true },
    h("label", { for: "token" }, "Bearer token (machine users)", token),
    h("button", { type: "submit" }, "Use token"),
  );
  tokenForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await useToken(token.value.trim());
    } catch (err) {
      error.textContent = err.status === 401 ? "That token is not valid here." : err.message;
    }
  });
  const toggle = h("button", { type: "button", class: "linkish", "aria-controls": "token-form", "aria-expanded": "false" }, "Use a bearer token instead");
  toggle.addEventListener("click", () => {
    tokenForm.hidden = !tokenForm.hidden;
    toggle.setAttribute("aria-expanded", String(!tokenForm.hidden));
    if (!tokenForm.hidden) token.focus();
  });
  fill(
    app,
    h(
      "main",
      { id: "main", class: "signin-wrap", tabindex: "-1" },
      h("section", { class: "signin card", "aria-labelledby": "signin-title" }, h("h1", { id: "signin-title" }, "Sign in to ordermon"), form, toggle, tokenForm, error),
    ),
  );
  user.focus();
}

function shell() {
  const s = current();
  const isAdmin = s.user.role === "admin";
  const links = PAGES.filter((p) => !p.admin || isAdmin).map((p) =>
    h("a", { href: `#/${p.path}`, id: `nav-${p.path}` }, p.title),
  );
  const dot = h("span", { class: "dot", "aria-hidden": "true" });
  const connText = h("span", {}, "connecting");
  const content = h("main", { id: "main", class: "content", tabindex: "-1" });
  const out = h("button", { type: "button", id: "signout", class: "small" }, "Sign out");
  out.addEventListener("click", () => attempt(() => logout()));
  fill(
    app,
    h(
      "div",
      { class: "shell" },
      h(
        "header",
        { class: "side" },
        h("div", { class: "brand" }, "ordermon"),
        h("nav", { class: "nav", "aria-label": "Pages" }, links),
        h(
          "div",
          { class: "who" },
          h("span", { id: "whoami" }, `${s.user.name || s.user.id} · ${s.user.role}`),
          h("span", { class: "conn", id: "conn", "aria-live": "polite" }, dot, connText),
          out,
        ),
      ),
      content,
    ),
  );
  stream.onState((st) => {
    dot.className = `dot ${st === "open" ? "ok" : st === "connecting" ? "warn" : "bad"}`;
    connText.textContent = st === "open" ? "live" : st;
  });
  overview.track(stream);
  stream.start();
  return { content, links };
}

let frame = null;

function route() {
  if (!current()) return;
  if (!frame || !document.body.contains(frame.content)) frame = shell();
  const want = (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0];
  const isAdmin = role() === "admin";
  const entry = PAGES.find((p) => p.path === want && (!p.admin || isAdmin)) || PAGES[0];
  for (const a of frame.links) {
    if (a.getAttribute("href") === `#/${entry.path}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (unmount) unmount();
  fill(frame.content);
  document.title = `${entry.title} · ordermon`;
  unmount = entry.page.mount(frame.content, context()) || null;
  frame.content.focus({ preventScroll: true });
}

onSession((s) => {
  if (!s) {
    frame = null;
    signInPage();
  } else if (!frame) {
    route();
  }
});

window.addEventListener("hashchange", route);

if (current()) route();
else signInPage();

// Marks the first meaningful paint for the browser tests.
requestAnimationFrame(() => performance.mark("ordermon-ready"));
