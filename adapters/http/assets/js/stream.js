// The live stream: one WebSocket to /api/v1/stream, reconnected with backoff.
// Frames are domain events, `{"type":"quote",...}` for subscribed instruments
// and `{"type":"lagged",...}` when the client fell behind.

import { current } from "./api.js";

export class Stream {
  constructor() {
    this.ws = null;
    this.handlers = new Set();
    this.stateHandlers = new Set();
    this.state = "closed";
    this.backoff = 500;
    this.quotes = new Map(); // instrument -> subscriber count
    this.stopped = true;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
    this.setState("closed");
  }

  open() {
    const s = current();
    if (!s || this.stopped) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const url = `${proto}://${location.host}/api/v1/stream?token=${encodeURIComponent(s.access)}`;
    this.setState("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.backoff > 500 || this.everOpened;
      this.everOpened = true;
      this.backoff = 500;
      this.setState("open");
      this.sendQuotes();
      if (reconnected) this.emit({ type: "reconnected" });
    };
    ws.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      this.emit(frame);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setState("closed");
      if (this.stopped) return;
      this.timer = setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  emit(frame) {
    for (const fn of this.handlers) {
      try {
        fn(frame);
      } catch (e) {
        console.error("stream handler failed", e);
      }
    }
  }

  /** Calls `fn(frame)` for every frame; returns the unsubscribe function. */
  on(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  onState(fn) {
    this.stateHandlers.add(fn);
    fn(this.state);
    return () => this.stateHandlers.delete(fn);
  }

  setState(s) {
    this.state = s;
    for (const fn of this.stateHandlers) fn(s);
  }

  /** Asks for quotes of `instruments`; returns the function that stops asking. */
  watchQuotes(instruments) {
    for (const i of instruments) this.quotes.set(i, (this.quotes.get(i) || 0) + 1);
    this.sendQuotes();
    return () => {
      for (const i of instruments) {
        const n = (this.quotes.get(i) || 1) - 1;
        if (n <= 0) this.quotes.delete(i);
        else this.quotes.set(i, n);
      }
      this.sendQuotes();
    };
  }

  sendQuotes() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ quotes: [...this.quotes.keys()] }));
    }
  }
}
