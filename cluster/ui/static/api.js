// The dashboard's only way to the node: the /v1 API with the bearer token the person
// entered (kept in sessionStorage: this browser tab's session only), and the event
// feed (SPEC 4.7) read as Server-Sent Events over fetch, so the token goes with it
// (EventSource cannot send an Authorization header). When this node serves no
// /v1/events route, `live` falls back to polling.

const TOKEN_KEY = "fsmcluster.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

function headers(extra) {
  const out = { ...extra };
  if (token()) out.Authorization = `Bearer ${token()}`;
  return out;
}

export async function request(method, path, { json, accept, signal } = {}) {
  const init = { method, headers: headers(accept ? { Accept: accept } : {}), signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  if (!response.ok) {
    let error = { code: "http_" + response.status, message: text.slice(0, 300) };
    try { error = JSON.parse(text).error || error; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return { status: response.status, text, headers: response.headers };
}

export async function getJSON(path, opts) {
  return JSON.parse((await request("GET", path, opts)).text);
}

export async function getText(path, opts) {
  return (await request("GET", path, opts)).text;
}

export const seg = encodeURIComponent;

export function objectPath(machine, id) {
  return `/v1/machines/${seg(machine)}/objects/${seg(id)}`;
}

// -- the event feed --------------------------------------------------------

let feedKnown = null; // a promise of: does this node serve GET /v1/events?

export function hasFeed() {
  if (feedKnown === null) {
    feedKnown = getJSON("/v1/openapi.json")
      .then((doc) => Boolean(doc.paths && doc.paths["/v1/events"] && doc.paths["/v1/events"].get))
      .catch(() => { feedKnown = null; return false; });
  }
  return feedKnown;
}

// Calls onEvent(event) for each event of the feed matching `filters`; resumes with
// Last-Event-ID after a drop. Returns a stop function.
export function subscribe(filters, onEvent, onStatus) {
  const ctrl = new AbortController();
  let lastId = null;
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
  async function run() {
    while (!ctrl.signal.aborted) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastId) extra["Last-Event-ID"] = lastId;
        const response = await fetch("/v1/events" + (query ? "?" + query : ""),
          { headers: headers(extra), signal: ctrl.signal });
        if (!response.ok || !response.body) throw new Error("feed answered " + response.status);
        onStatus && onStatus("events");
        await readStream(response.body, (id, data, name) => {
          if (name === "gone") {
            // fell too far behind: the node closes the stream; start again from now,
            // and the page re-reads its data (live() refreshes on every new connection)
            lastId = null;
            onStatus && onStatus("gone");
            return;
          }
          if (id) lastId = id;
          if (data) onEvent(JSON.parse(data));
        });
      } catch (err) {
        if (ctrl.signal.aborted) return;
        onStatus && onStatus("reconnecting");
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  run();
  return () => ctrl.abort();
}

async function readStream(body, onMessage) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let id = null;
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("event:")) name = line.slice(6).trim();
      }
      onMessage(id, data.join("\n"), name);
    }
  }
}

// Keeps a page current: `refresh` runs now, then after matching events (at most once
// per `gapMs`) when the node has the feed, else every `pollMs`. Returns a stop function.
export function live(filters, refresh, { pollMs = 1000, gapMs = 300, onEvent, onMode } = {}) {
  let stopped = false;
  let timer = null;
  let pending = false;
  let stopFeed = null;
  const run = async () => {
    if (stopped || pending) return;
    pending = true;
    try { await refresh(); } finally { pending = false; }
  };
  const soon = () => {
    if (timer === null && !stopped) timer = setTimeout(() => { timer = null; run(); }, gapMs);
  };
  run();
  hasFeed().then((feed) => {
    if (stopped) return;
    if (feed) {
      onMode && onMode("event feed");
      stopFeed = subscribe(filters, (event) => { onEvent && onEvent(event); soon(); },
        (status) => {
          if (status === "events") soon(); // a new connection: catch up on what was missed
          onMode && onMode(status === "events" ? "event feed" : "feed: reconnecting");
        });
    } else {
      onMode && onMode(`polling every ${pollMs / 1000} s`);
      const interval = setInterval(run, pollMs);
      stopFeed = () => clearInterval(interval);
    }
  });
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    if (stopFeed) stopFeed();
  };
}
