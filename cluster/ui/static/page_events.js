// The event log: the feed (SPEC 4.7) as it arrives, newest first, filtered by machine,
// object and kind (the node filters; the page keeps the last 200).

import { hasFeed, seg, subscribe } from "./api.js";
import { fill, h, link, when } from "./dom.js";

const KEEP = 200;
const KINDS = ["", "created", "transition", "removed", "emitted", "task", "vote", "expired"];

export function eventsPage(main, _params, query, ctx) {
  const filters = { machine: query.get("machine") || "", object: query.get("object") || "", kind: query.get("kind") || "" };
  const inputs = {
    machine: h("input", { id: "e-machine", value: filters.machine, placeholder: "any machine" }),
    object: h("input", { id: "e-object", value: filters.object, placeholder: "any object" }),
    kind: h("select", { id: "e-kind" }, KINDS.map((k) => h("option", { value: k, selected: k === filters.kind }, k || "any kind"))),
  };
  const form = h("form", { class: "filters", id: "event-filters" },
    h("label", {}, "machine ", inputs.machine), h("label", {}, "object ", inputs.object),
    h("label", {}, "kind ", inputs.kind), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams(Object.entries(inputs).map(([k, i]) => [k, i.value.trim()]).filter(([, v]) => v));
    location.hash = "#/events?" + q.toString();
  });
  const rows = h("tbody", {});
  const note = h("p", { class: "muted", id: "event-note" }, "Waiting for events…");
  fill(main, h("h1", {}, "Events"), form, note,
    h("table", { class: "grid", id: "event-log" }, h("thead", {}, h("tr", {},
      ["index", "at", "kind", "machine", "object", "transition", "from → to", "version"].map((t) => h("th", {}, t)))), rows));
  let stop = null;
  let stopped = false;
  hasFeed().then((feed) => {
    if (stopped) return;
    if (!feed) {
      ctx.setMode("no event feed");
      fill(note, "This node does not serve the event feed (GET /v1/events), so there is no log to show; the other pages poll instead.");
      return;
    }
    ctx.setMode("event feed");
    stop = subscribe(filters, (e) => {
      fill(note, "");
      rows.prepend(eventRow(e));
      while (rows.children.length > KEEP) rows.lastChild.remove();
    }, (status) => {
      if (status === "gone") fill(note, "This page fell too far behind the feed and was cut off: events were skipped here. New events show from now.");
      ctx.setMode(status === "events" ? "event feed" : "feed: reconnecting");
    });
  });
  return () => { stopped = true; if (stop) stop(); };
}

function eventRow(e) {
  return h("tr", { "data-index": e.index, "data-kind": e.kind },
    h("td", { class: "num" }, e.index), h("td", { class: "muted" }, when(e.at)), h("td", {}, e.kind),
    h("td", {}, e.machine ? link(`#/machines/${seg(e.machine)}`, e.machine) : ""),
    h("td", {}, e.machine && e.object ? link(`#/objects/${seg(e.machine)}/${seg(e.object)}`, e.object) : ""),
    h("td", {}, e.transition || e.event || ""), h("td", {}, `${e.from || "∅"} → ${e.to || "∅"}`),
    h("td", { class: "num" }, e.version ?? ""));
}
