// One object: its diagram with the current state highlighted and the path it took,
// data, version, pending change with votes, tasks, history; and the actions its
// state allows. Current from the event feed for this object (or polling every second).

import { getJSON, getText, live, objectPath, seg } from "./api.js";
import { pendingView, transitionForm } from "./actions.js";
import { errorBox, fill, h, json, link, shortRev, showSvg, table, when } from "./dom.js";

export function objectPage(main, [machine, id], _query, ctx) {
  const el = {
    summary: h("div", { id: "object-summary" }),
    diagram: h("div", { class: "diagram", id: "object-diagram" }),
    data: h("div", { id: "object-data" }),
    pending: h("div", {}),
    votes: h("div", { class: "result", id: "vote-result" }),
    act: h("div", {}),
    acted: h("div", { class: "result", id: "action-result" }),
    tasks: h("div", { id: "object-tasks" }),
    history: h("div", { id: "object-history" }),
    error: h("div", {}),
  };
  fill(main,
    h("h1", {}, link(`#/machines/${seg(machine)}`, machine, { class: "muted" }), " / ", id),
    el.error, el.summary,
    h("div", { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, "Diagram"), el.diagram,
        h("p", { class: "legend muted" }, h("span", { class: "key current" }), "current state ",
          h("span", { class: "key visited" }), "visited ", h("span", { class: "key taken" }), "path taken (#n: move n)")),
      h("section", { class: "card" }, h("h2", {}, "Data"), el.data)),
    h("div", { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, "Pending change"), el.pending, el.votes),
      h("section", { class: "card" }, h("h2", {}, "Run a transition"), el.act, el.acted)),
    h("section", { class: "card" }, h("h2", {}, "Tasks"), el.tasks),
    h("section", { class: "card" }, h("h2", {}, "History"), el.history));
  let definition = null;
  let shown = null; // the version (and votes) the action forms were drawn for
  const refresh = async () => {
    try {
      const path = objectPath(machine, id);
      const [object, svg, history] = await Promise.all([
        getJSON(path), getText(`${path}/diagram?format=svg`), getJSON(`${path}/history?limit=50`)]);
      definition = definition || (await getJSON(`/v1/machines/${seg(machine)}`)).definition;
      fill(el.error);
      showSvg(el.diagram, svg);
      fill(el.summary, summary(object));
      fill(el.data, json(object.data));
      fill(el.tasks, tasksView(object.tasks));
      fill(el.history, historyView(history.events));
      const key = JSON.stringify([object.version, object.pending]);
      if (key !== shown) {
        shown = key;
        fill(el.pending, pendingView(machine, object, el.votes, refresh));
        fill(el.act, transitionForm({ machine, definition, object, onDone: refresh, result: el.acted }));
      }
    } catch (err) {
      fill(el.error, errorBox(err));
    }
  };
  return live({ machine, object: id }, refresh, { pollMs: 1000, onMode: ctx.setMode });
}

function summary(o) {
  return h("dl", { class: "facts" },
    fact("state", h("span", { class: "state-tag", id: "object-state" }, o.state)),
    fact("previous", o.previous_state || "—"),
    fact("version", h("span", { id: "object-version" }, o.version)),
    fact("generation", o.generation),
    fact("revision", h("span", { class: "mono" }, shortRev(o.revision))),
    fact("created", when(o.created_at)),
    fact("updated", when(o.updated_at)),
    fact("expires", o.expires_at ? when(o.expires_at) : "—"),
    fact("log index", o.index));
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

function tasksView(tasks) {
  if (!tasks.length) return h("p", { class: "muted" }, "No tasks in this state.");
  return table(["task", "status", "attempts", "error"], tasks.map((t) => h("tr", {},
    h("td", {}, t.name), h("td", {}, h("span", { class: `badge ${t.status === "completed" ? "ok" : t.status === "failed" ? "bad" : "warn"}` }, t.status)),
    h("td", { class: "num" }, t.attempts), h("td", {}, t.error || ""))), { class: "grid" });
}

function historyView(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events kept.");
  return table(["index", "kind", "transition", "from → to", "version", "at"], events.map((e) => h("tr", {},
    h("td", { class: "num" }, e.index), h("td", {}, e.kind), h("td", {}, e.transition || ""),
    h("td", {}, `${e.from || "∅"} → ${e.to || "∅"}`), h("td", { class: "num" }, e.version ?? ""),
    h("td", { class: "muted" }, when(e.at)))), { class: "grid" });
}
