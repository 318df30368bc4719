// Acting on objects: run an allowed transition with a JSON form, and vote on a pending
// change. The node decides (the token's role, the voter's principal, guards); the
// answer, refusals included, is shown next to the form.

import { objectPath, request, seg } from "./api.js";
import { errorBox, fill, h, when } from "./dom.js";

// Transitions of `definition` (canonical JSON) allowed from `state` (null: creations).
export function allowedTransitions(definition, state) {
  const terminal = state !== null && (definition.states[state] || {}).terminal;
  return Object.entries(definition.transitions).filter(([, t]) => {
    const from = t.from;
    if (state === null) return from === null;
    if (terminal || from === null) return false;
    if (from === "*") return true;
    return Array.isArray(from) ? from.includes(state) : from === state;
  }).map(([name]) => name);
}

export function transitionForm({ machine, definition, object, create, onDone, result }) {
  const names = allowedTransitions(definition, create ? null : object.state);
  if (!names.length) return h("p", { class: "muted" }, "No transition is allowed from here.");
  const own = !result;
  result = result || h("div", { class: "result", id: "action-result" });
  const id = create ? h("input", { id: "new-id", placeholder: "object id", required: true }) : null;
  const select = h("select", { id: "transition" }, names.map((n) => h("option", { value: n }, n)));
  const data = h("textarea", { id: "data", rows: 3, spellcheck: "false", placeholder: '{"key": "value"}' });
  const pin = create ? null : h("input", { type: "checkbox", id: "pin-version", checked: true });
  const form = h("form", { class: "action", id: create ? "create-form" : "transition-form" },
    id ? h("label", {}, "id ", id) : null,
    h("label", {}, "transition ", select),
    h("label", { class: "wide" }, "data (JSON object, optional)", data),
    pin ? h("label", {}, pin, ` only if still version ${object.version}`) : null,
    h("button", { type: "submit", id: "run" }, create ? "Create" : "Run transition"),
    own ? result : null);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    try {
      if (data.value.trim()) body.data = JSON.parse(data.value);
    } catch (err) {
      fill(result, errorBox({ code: "invalid_json", message: `the data is not JSON: ${err.message}` }));
      return;
    }
    if (pin && pin.checked) body.expected_version = object.version;
    const oid = create ? id.value.trim() : object.id;
    try {
      const answer = await request("POST",
        `${objectPath(machine, oid)}/transitions/${seg(select.value)}`, { json: body });
      const out = JSON.parse(answer.text);
      fill(result, h("div", { class: "ok-text" }, answer.status === 202
        ? `${select.value}: pending, waiting for votes`
        : `${select.value}: now in '${out.object.state}' (version ${out.object.version})`));
      if (create) location.hash = `#/objects/${seg(machine)}/${seg(oid)}`;
      else if (onDone) onDone();
    } catch (err) {
      fill(result, errorBox(err));
    }
  });
  return form;
}

// The pending change with one approve/reject pair per voter who has not voted.
// Answers go to `result` (kept by the page, so a refresh does not wipe them). A change
// open to any voter (`voters: "any"`) gets a name field for the voter.
export function pendingView(machine, object, result, onDone) {
  const p = object.pending;
  if (!p) return h("p", { class: "muted", id: "no-pending" }, "No pending change.");
  const listed = Array.isArray(p.voters) ? p.voters : Object.keys(p.votes);
  const rows = listed.map((voter) => {
    const vote = p.votes[voter];
    const cell = vote === undefined
      ? [voteButton(machine, object, () => voter, voter, true, result, onDone),
        voteButton(machine, object, () => voter, voter, false, result, onDone)]
      : h("span", { class: vote ? "badge ok" : "badge bad" }, vote ? "approved" : "rejected");
    return h("tr", { "data-voter": voter }, h("td", {}, voter), h("td", {}, cell));
  });
  if (!Array.isArray(p.voters)) {
    const name = h("input", { id: "voter-name", placeholder: "voter (your principal)" });
    const who = () => name.value.trim();
    rows.push(h("tr", {}, h("td", {}, name), h("td", {},
      voteButton(machine, object, who, "any", true, result, onDone),
      voteButton(machine, object, who, "any", false, result, onDone))));
  }
  const approvals = Object.values(p.votes).filter((v) => v).length;
  const of = Array.isArray(p.voters) ? `of ${p.voters.length} ` : "";
  return h("div", { id: "pending" },
    h("p", {}, h("b", {}, p.transition), ` needs ${p.required} ${of}approvals `,
      `(${approvals} so far); change `, h("code", {}, p.change.slice(0, 16)),
      p.expires_at ? h("span", { class: "muted" }, ` · expires ${when(p.expires_at)}`) : null),
    p.data && Object.keys(p.data).length ? h("pre", { class: "json" }, JSON.stringify(p.data, null, 2)) : null,
    h("table", { class: "grid" }, h("tbody", {}, rows)));
}

function voteButton(machine, object, voterOf, key, approve, result, onDone) {
  const label = approve ? "Approve" : "Reject";
  return h("button", {
    type: "button", class: approve ? "approve" : "reject", id: `vote-${approve ? "approve" : "reject"}-${key}`,
    onclick: async () => {
      const voter = voterOf();
      if (!voter) {
        fill(result, errorBox({ code: "invalid_request", message: "enter the voter's name first" }));
        return;
      }
      try {
        const answer = await request("PUT", `${objectPath(machine, object.id)}/votes/${seg(voter)}`,
          { json: { approve, change: object.pending.change } });
        fill(result, h("div", { class: "ok-text" }, `${voter}: ${JSON.parse(answer.text).outcome}`));
        if (onDone) onDone();
      } catch (err) {
        fill(result, errorBox(err));
      }
    },
  }, key === "any" ? label : `${label} as ${key}`);
}
