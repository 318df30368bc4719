// Machines: the list with revisions and objects per state; a machine's page with its
// diagram (objects per state drawn on it), its source and revisions, and a form that
// creates an object. Both stay current from the event feed (at most once a second:
// counting objects per state is a pass over the machine's objects) or by polling.

import { getJSON, getText, live, seg } from "./api.js";
import { errorBox, fill, h, link, shortRev, showSvg, table } from "./dom.js";
import { transitionForm } from "./actions.js";

export function machinesPage(main, _params, _query, ctx) {
  const body = h("div", { id: "machines" });
  fill(main, h("h1", {}, "Machines"), body);
  return live({}, async () => {
    try {
      const { machines } = await getJSON("/v1/machines");
      const counts = await Promise.all(machines.map((m) => getJSON(`/v1/machines/${seg(m.name)}/states`)));
      fill(body, machines.length ? table(["machine", "revision", "objects", "objects per state"],
        machines.map((m, i) => machineRow(m, counts[i])), { class: "grid", id: "machine-list" })
        : h("p", { class: "muted" }, "No machines yet: PUT /v1/machines/{name} with a definition."));
    } catch (err) {
      fill(body, errorBox(err));
    }
  }, { pollMs: 2000, gapMs: 1000, onMode: ctx.setMode });
}

function machineRow(m, counts) {
  return h("tr", { "data-machine": m.name },
    h("td", {}, link(`#/machines/${seg(m.name)}`, m.name)),
    h("td", { class: "mono" }, shortRev(m.revision)),
    h("td", { class: "num" }, m.objects.toLocaleString()),
    h("td", {}, stateChips(m.name, counts.states)));
}

function stateChips(machine, states) {
  return Object.entries(states).map(([state, n]) =>
    link(`#/objects?machine=${seg(machine)}&state=${seg(state)}`, [h("span", {}, state), h("b", {}, n.toLocaleString())],
      { class: n ? "chip" : "chip empty", "data-state": state }));
}

export function machinePage(main, [name], _query, ctx) {
  const diagram = h("div", { class: "diagram", id: "machine-diagram" });
  const counts = h("div", { id: "state-counts" });
  const details = h("div", {});
  const create = h("div", {});
  fill(main,
    h("h1", {}, h("span", { class: "muted" }, "machine "), name),
    h("section", { class: "card" }, h("h2", {}, "Diagram"), diagram, counts),
    h("section", { class: "card" }, h("h2", {}, "Create an object"), create),
    details);
  let defined = false;
  return live({ machine: name }, async () => {
    try {
      const [svg, states, machine] = await Promise.all([
        getText(`/v1/machines/${seg(name)}/diagram?format=svg&counts=true`),
        getJSON(`/v1/machines/${seg(name)}/states`),
        getJSON(`/v1/machines/${seg(name)}`),
      ]);
      showSvg(diagram, svg);
      fill(counts, h("p", {}, `${states.objects.toLocaleString()} objects: `, stateChips(name, states.states)));
      fill(details, machineDetails(machine));
      if (!defined) {
        defined = true;
        fill(create, transitionForm({ machine: name, definition: machine.definition, create: true }));
      }
    } catch (err) {
      fill(diagram, errorBox(err));
    }
  }, { pollMs: 2000, gapMs: 1000, onMode: ctx.setMode });
}

function machineDetails(machine) {
  return [
    h("section", { class: "card" }, h("h2", {}, "Revisions"),
      table(["revision", "objects", ""], machine.revisions.map((r) => h("tr", {},
        h("td", { class: "mono" }, shortRev(r.revision)), h("td", { class: "num" }, r.objects),
        h("td", {}, r.current ? "current" : ""))), { class: "grid", id: "revisions" })),
    h("section", { class: "card" }, h("h2", {}, "Source"), h("pre", { class: "source", id: "source" }, machine.source)),
  ];
}
