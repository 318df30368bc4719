// Small DOM helpers: every text goes in as text (never as HTML), so nothing a machine,
// an object or an event carries can run in the page.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(href, text, attrs) {
  return h("a", { href, ...attrs }, text);
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function table(headers, rows, attrs) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

export function errorBox(err) {
  const code = err && err.code ? `${err.code}: ` : "";
  return h("div", { class: "error", role: "alert" }, code + (err && err.message ? err.message : String(err)));
}

export function shortRev(revision) {
  return revision ? revision.replace(/^sha256:/, "").slice(0, 12) : "";
}

export function when(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  return isNaN(at) ? iso : at.toLocaleString();
}

// An SVG picture made by the node (its text is escaped there) into `el`.
export function showSvg(el, svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") throw new Error("the diagram is not an SVG picture");
  el.replaceChildren(document.importNode(svg, true));
}
