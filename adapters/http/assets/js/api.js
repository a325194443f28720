// The REST client: bearer tokens, refresh before expiry, problem+json turned
// into readable messages.

const KEY = "ordermon.session";

/** An error the API answered, with a message fit to show a person. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(readable(status, problem, retryAfter));
    this.status = status;
    this.problem = problem;
  }
}

function readable(status, p, retryAfter) {
  if (status === 0) return "The server cannot be reached. Check your connection.";
  if (status === 429) {
    const s = retryAfter ? ` Try again in ${retryAfter} s.` : "";
    return `${(p && p.detail) || "Too many requests."}${s}`;
  }
  if (!p || typeof p !== "object") return `The server answered ${status}.`;
  let msg = p.detail || p.title || `The server answered ${status}.`;
  if (Array.isArray(p.errors) && p.errors.length) {
    msg += " " + p.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
  }
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

let session = load();
let refreshTimer = null;
const listeners = new Set();

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || null;
  } catch {
    return null;
  }
}

function save(s) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  scheduleRefresh();
  for (const fn of listeners) fn(s);
}

/** The signed-in session: { access, refresh, expiresAt, user: {id, name, role} }. */
export function current() {
  return session;
}

/** Calls `fn(session)` whenever the session changes (null on sign-out). */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function fromTokens(t) {
  return {
    access: t.access_token,
    refresh: t.refresh_token || null,
    expiresAt: Date.now() + (t.expires_in || 900) * 1000,
    user: t.user,
  };
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session || !session.refresh) return;
  const wait = Math.max(5000, (session.expiresAt - Date.now()) * 0.8);
  refreshTimer = setTimeout(() => refresh().catch(() => save(null)), wait);
}

async function raw(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get("Retry-After"));
  return data;
}

let refreshing = null;

/** Exchanges the refresh token for new tokens (one at a time). */
export function refresh() {
  if (!session || !session.refresh) return Promise.reject(new ApiError(401, null));
  if (!refreshing) {
    refreshing = raw("POST", "/api/v1/auth/refresh", { refresh_token: session.refresh })
      .then((t) => save(fromTokens(t)))
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** An authenticated call; a 401 is retried once after a refresh. */
export async function api(method, path, body) {
  if (!session) throw new ApiError(401, { detail: "You are signed out." });
  try {
    return await raw(method, path, body, session.access);
  } catch (e) {
    if (e.status === 401 && session && session.refresh) {
      try {
        await refresh();
      } catch {
        // The session is over (revoked, expired or signed out elsewhere).
        save(null);
        throw e;
      }
      return raw(method, path, body, session.access);
    }
    if (e.status === 401) save(null);
    throw e;
  }
}

/** Signs in with a password. */
export async function login(userId, password) {
  const t = await raw("POST", "/api/v1/auth/login", { user_id: userId, password });
  save(fromTokens(t));
}

/** Signs in with a pasted bearer token (machine users): checked against /auth/me. */
export async function useToken(token) {
  const me = await raw("GET", "/api/v1/auth/me", undefined, token);
  let exp = Date.now() + 3600 * 1000;
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    if (claims.exp) exp = claims.exp * 1000;
  } catch {
    /* the server accepted it; keep the default */
  }
  save({ access: token, refresh: null, expiresAt: exp, user: me });
}

/** Signs out: the server revokes the session; the tokens are forgotten either way. */
export async function logout() {
  const s = session;
  save(null);
  if (s) {
    try {
      await raw("POST", "/api/v1/auth/logout", undefined, s.access);
    } catch {
      /* signed out locally anyway */
    }
  }
}

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.append(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}

scheduleRefresh();
