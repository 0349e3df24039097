// Tiny helpers for building admin tables without innerHTML (names come from players).

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) element.setAttribute(name, value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

export function cells(...values) {
  return el("tr", {}, ...values.map((value) => el("td", {}, value ?? "–")));
}

// Put `rows` into the table's body, labelling each cell with its column's heading (phones
// show each row as a small card of "heading: value" lines).
export function fillTable(table, rows) {
  const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute("data-label", headings[i] ?? ""));
  }
  table.querySelector("tbody").replaceChildren(...rows);
}

export function pill(state) {
  return el("span", { class: "state-pill", "data-state": state }, String(state));
}

export function percent(value) {
  return typeof value === "number" ? `${(value * 100).toFixed(1)}%` : "–";
}

// A panel's own status line: errors stay readable next to what failed.
export function status(panel, text) {
  panel.querySelector(".panel-status").textContent = text ?? "";
}
