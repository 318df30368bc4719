// The dashboard's shell: the token form, the navigation and a hash router. Each page
// is `render(main, params, ctx)` returning a function that stops its live updates.

import { ApiError, getJSON, setToken, token } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import { clusterPage } from "./page_cluster.js";
import { eventsPage } from "./page_events.js";
import { machinePage, machinesPage } from "./page_machines.js";
import { objectPage } from "./page_object.js";
import { objectsPage } from "./page_objects.js";

const ROUTES = [
  [/^\/cluster$/, "cluster", () => clusterPage],
  [/^\/machines$/, "machines", () => machinesPage],
  [/^\/machines\/([^/]+)$/, "machines", () => machinePage],
  [/^\/objects$/, "objects", () => objectsPage],
  [/^\/objects\/([^/]+)\/([^/]+)$/, "objects", () => objectPage],
  [/^\/events$/, "events", () => eventsPage],
];

let stopPage = null;
let routing = 0; // the newest navigation; an older one that is still waiting gives up
const main = () => document.getElementById("main");

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/cluster";
  const [path, query] = raw.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

function setMode(text) {
  document.getElementById("live-mode").textContent = text ? "● " + text : "";
}

// Nothing but the token form until the node accepts what this session sends.
async function allowed() {
  try {
    await getJSON("/v1/cluster");
    return true;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      fill(main(), h("section", { class: "locked", id: "locked" },
        h("h1", {}, "A token is needed"),
        h("p", {}, token()
          ? `This node refused the token (${err.code}). Enter another one above.`
          : "This node runs with --auth-file: enter a bearer token above to see the cluster.")));
      setMode("");
      return false;
    }
    fill(main(), errorBox(err));
    return false;
  }
}

async function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  const { path, query } = parseHash();
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  const mine = ++routing;
  const ok = await allowed();
  if (mine !== routing || !ok) return;
  for (const [pattern, nav, page] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const active = document.querySelector(`nav a[data-page="${nav}"]`);
    if (active) active.classList.add("active");
    const params = match.slice(1).map(decodeURIComponent);
    fill(main());
    stopPage = page()(main(), params, query, { setMode }) || null;
    return;
  }
  fill(main(), errorBox({ code: "not_found", message: `no page ${path}; see the links above` }));
}

function setupToken() {
  const input = document.getElementById("token");
  input.value = token();
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    route();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    input.value = "";
    setToken("");
    route();
  });
}

window.addEventListener("hashchange", route);
setupToken();
route();
