// "Harder to fool, round by round": MNIST accuracy, accuracy on earlier rounds' held-out
// drawings, and the verified model error rate, per model version, as a small SVG line chart.
// A version's fooled rate is drawn only once the server gives its interval (enough attempts,
// `[chart] min_attempts` in the rules), as a dot with its Wilson 95% interval and its count.

import { api } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 320;
const H = 180;
const PAD = { left: 34, right: 10, top: 12, bottom: 26 };
const SERIES = [
  { key: "mnist", label: "MNIST test accuracy", className: "series-mnist" },
  { key: "heldout", label: "accuracy on earlier rounds' drawings", className: "series-heldout" },
  { key: "vmer", label: "verified model error rate", className: "series-vmer" },
];

export async function loadChart(root) {
  const status = root.querySelector(".chart-status");
  try {
    const metrics = await api("/api/models/metrics");
    drawChart(root.querySelector(".chart"), root.querySelector(".chart-table"), metrics);
    showFigure(root, metrics.length > 0);
    status.textContent = metrics.length ? "" : "No model metrics yet.";
  } catch (error) {
    showFigure(root, false);
    status.textContent = error.message;
  }
}

// (`hidden` is an attribute on SVG elements, not a property.)
function showFigure(root, shown) {
  root.querySelector(".chart").toggleAttribute("hidden", !shown);
  root.querySelector(".legend").hidden = !shown;
}

function meanHeldout(heldout) {
  const values = Object.values(heldout ?? {}).filter((v) => typeof v === "number");
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function drawChart(svg, table, metrics) {
  const rows = metrics.map((m) => ({
    version: m.version,
    mnist: m.mnist_accuracy ?? null,
    heldout: meanHeldout(m.heldout),
    // No interval: too few attempts to say anything about the rate.
    vmer: m.vmer_interval ? m.vmer : null,
    interval: m.vmer_interval ?? null,
    verified: m.verified ?? 0,
    attempts: m.attempts ?? 0,
  }));
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const x = (i) =>
    PAD.left + (rows.length < 2 ? 0.5 : i / (rows.length - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v) * (H - PAD.top - PAD.bottom);

  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    add(svg, "line", { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: "grid" });
    add(svg, "text", { x: PAD.left - 4, y: y(tick) + 4, class: "axis", "text-anchor": "end" })
      .textContent = `${tick * 100}%`;
  }
  rows.forEach((row, i) => {
    add(svg, "text", { x: x(i), y: H - 8, class: "axis", "text-anchor": "middle" }).textContent =
      row.version;
  });
  for (const series of SERIES) {
    const points = rows.map((row, i) => [i, row[series.key]]).filter(([, v]) => v !== null);
    if (points.length > 1) {
      add(svg, "polyline", {
        points: points.map(([i, v]) => `${x(i)},${y(v)}`).join(" "),
        class: `line ${series.className}`,
      });
    }
    for (const [i, v] of points) {
      const row = rows[i];
      if (series.key === "vmer") {
        const [low, high] = row.interval;
        add(svg, "line", { x1: x(i), x2: x(i), y1: y(low), y2: y(high), class: `interval ${series.className}` });
      }
      const dot = add(svg, "circle", { cx: x(i), cy: y(v), r: 3.5, class: series.className });
      add(dot, "title", {}).textContent =
        `${row.version}: ${series.label} ${(v * 100).toFixed(1)}%` +
        (series.key === "vmer" ? ` (${rateDetail(row)})` : "");
    }
  }
  fillTable(table, rows);
}

// The same numbers as a table, for screen readers (and anyone who wants the figures).
function fillTable(table, rows) {
  const pct = (v) => (v === null ? "–" : `${(v * 100).toFixed(1)}%`);
  const body = table.querySelector("tbody");
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      const vmer = row.vmer === null ? `– (${row.attempts} attempts: too few)` : `${pct(row.vmer)} (${rateDetail(row)})`;
      for (const value of [row.version, pct(row.mnist), pct(row.heldout), vmer]) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      return tr;
    }),
  );
}

// "3 of 120 attempts, 95% interval 0.5–7.1%"
function rateDetail(row) {
  const [low, high] = row.interval;
  return `${row.verified} of ${row.attempts} attempts, 95% interval ${(low * 100).toFixed(1)}–${(high * 100).toFixed(1)}%`;
}

function add(parent, tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  parent.append(element);
  return element;
}
