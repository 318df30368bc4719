// Cluster: every member as it answers for itself (GET /v1/cluster/nodes, asked by this
// node), polled every 1.5 s: role, health, term, commit/applied index, lag, snapshots.

import { getJSON } from "./api.js";
import { errorBox, fill, h, table, when } from "./dom.js";

const POLL_MS = 1500;

export function clusterPage(main, _params, _query, ctx) {
  const body = h("div", { id: "cluster" });
  fill(main, h("h1", {}, "Cluster"), body);
  let stopped = false;
  async function refresh() {
    try {
      const view = await getJSON("/v1/cluster/nodes");
      if (!stopped) fill(body, render(view));
    } catch (err) {
      if (!stopped) fill(body, errorBox(err));
    }
  }
  ctx.setMode(`polling every ${POLL_MS / 1000} s`);
  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => { stopped = true; clearInterval(timer); };
}

function render(view) {
  const answers = view.nodes.filter((n) => n.ok).map((n) => n.status);
  const top = Math.max(0, ...answers.map((s) => s.commit_index));
  const leader = answers.find((s) => s.leader && s.node && s.leader.raft === s.node.raft);
  const rows = view.nodes.map((n) => memberRow(n, top, view.node));
  return [
    h("p", { class: "summary" },
      leader ? `Leader ${leader.node.raft} in term ${leader.term}; ` : "No leader agreed; ",
      `${view.nodes.filter((n) => n.ok && n.status.ready).length} of ${view.nodes.length} members ready.`),
    table(["member", "role", "health", "term", "commit", "applied", "lag", "snapshot store",
      "last snapshot"], rows, { id: "members", class: "grid" }),
  ];
}

function memberRow(n, top, here) {
  const self = here && n.raft === here.raft;
  const name = h("td", {}, h("div", {}, n.raft), h("div", { class: "muted" },
    `http ${n.http || "?"}`, self ? " · this node" : ""));
  if (!n.ok) {
    return h("tr", { class: "down", "data-raft": n.raft }, name, h("td", {}, "?"),
      h("td", {}, h("span", { class: "badge bad" }, "down"), h("div", { class: "muted" }, n.error || "")),
      h("td", { colspan: 6 }, ""));
  }
  const s = n.status;
  const isLeader = s.leader && s.leader.raft === s.node.raft;
  const role = isLeader ? "leader" : s.leader ? "follower" : "no leader";
  const health = s.ready ? h("span", { class: "badge ok" }, "ready")
    : h("span", { class: "badge warn" }, "not ready");
  const snap = s.snapshot || {};
  const snapText = snap.last_index ? [`#${snap.last_index}`, h("div", { class: "muted" }, when(snap.last_at))]
    : h("span", { class: "muted" }, "none yet");
  return h("tr", { "data-raft": n.raft, "data-role": role },
    name, h("td", {}, h("span", { class: `role ${role.replace(" ", "-")}` }, role)), h("td", {}, health),
    h("td", { class: "num" }, s.term), h("td", { class: "num" }, s.commit_index),
    h("td", { class: "num" }, s.applied_index), h("td", { class: "num" }, Math.max(0, top - s.applied_index)),
    h("td", {}, snap.store || "", snap.ok === false ? h("div", { class: "error-text" }, snap.error || "failed") : ""),
    h("td", {}, snapText));
}
