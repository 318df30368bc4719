// Objects: search by machine, state and id prefix, one page at a time (the node pages
// by id: `after` is the previous page's `next`), so 100,000 objects cost one page.

import { getJSON, live, seg } from "./api.js";
import { errorBox, fill, h, link, table, when } from "./dom.js";

const PAGE = 50;

export function objectsPage(main, _params, query, ctx) {
  const machine = query.get("machine") || "";
  const state = query.get("state") || "";
  const prefix = query.get("prefix") || "";
  const after = query.get("after") || "";
  const machineSel = h("select", { id: "f-machine", name: "machine" });
  const stateSel = h("select", { id: "f-state", name: "state" }, h("option", { value: "" }, "any state"));
  const prefixIn = h("input", { id: "f-prefix", name: "prefix", value: prefix, placeholder: "id prefix" });
  const results = h("div", { id: "object-results" });
  const form = h("form", { class: "filters", id: "object-search" },
    h("label", {}, "machine ", machineSel), h("label", {}, "state ", stateSel),
    h("label", {}, "id starts with ", prefixIn), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/objects?" + params({ machine: machineSel.value, state: stateSel.value, prefix: prefixIn.value.trim() });
  });
  machineSel.addEventListener("change", () => { stateSel.value = ""; form.requestSubmit(); });
  fill(main, h("h1", {}, "Objects"), form, results);
  fillChoices(machineSel, stateSel, machine, state).catch((err) => fill(results, errorBox(err)));
  if (!machine) {
    fill(results, h("p", { class: "muted" }, "Choose a machine."));
    return null;
  }
  const q = params({ state, prefix, after, limit: PAGE });
  return live({ machine }, async () => {
    try {
      const page = await getJSON(`/v1/machines/${seg(machine)}/objects?${q}`);
      fill(results, resultsView(machine, page, { machine, state, prefix, after }));
    } catch (err) {
      fill(results, errorBox(err));
    }
  }, { pollMs: 2000, onMode: ctx.setMode });
}

function params(values) {
  return new URLSearchParams(Object.entries(values).filter(([, v]) => v !== "" && v !== null)).toString();
}

async function fillChoices(machineSel, stateSel, machine, state) {
  const { machines } = await getJSON("/v1/machines");
  fill(machineSel, h("option", { value: "" }, "choose…"),
    machines.map((m) => h("option", { value: m.name, selected: m.name === machine }, m.name)));
  if (!machine) return;
  const counts = await getJSON(`/v1/machines/${seg(machine)}/states`);
  for (const [name, n] of Object.entries(counts.states)) {
    stateSel.append(h("option", { value: name, selected: name === state }, `${name} (${n.toLocaleString()})`));
  }
}

function resultsView(machine, page, filter) {
  if (!page.objects.length) return h("p", { class: "muted", id: "no-objects" }, "No objects match.");
  const rows = page.objects.map((o) => h("tr", { "data-id": o.id },
    h("td", {}, link(`#/objects/${seg(machine)}/${seg(o.id)}`, o.id)),
    h("td", {}, h("span", { class: "state-tag" }, o.state)),
    h("td", { class: "num" }, o.version),
    h("td", {}, o.pending ? h("span", { class: "badge warn" }, `${o.pending.transition}: votes`) : ""),
    h("td", {}, o.tasks.length ? `${o.tasks.filter((t) => t.status === "completed").length}/${o.tasks.length}` : ""),
    h("td", { class: "muted" }, when(o.updated_at))));
  const nav = h("div", { class: "pager" },
    filter.after ? link("#/objects?" + params({ ...filter, after: "" }), "« first page", { id: "first-page" }) : null,
    page.next ? link("#/objects?" + params({ ...filter, after: page.next }), "next page »", { id: "next-page" }) : null);
  return [table(["id", "state", "version", "pending", "tasks", "updated"], rows, { class: "grid", id: "object-list" }), nav];
}
