// The model registry: every version with its lineage, gate and metrics; roll back to one.

import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { el, fillTable, percent, pill, status } from "./dom.js";

export class ModelsPanel {
  constructor(root) {
    this.root = root;
  }

  async load() {
    try {
      const models = await adminApi("/api/admin/models");
      fillTable(this.root.querySelector("table"), models.map((m) => this.row(m)));
      status(this.root, models.length ? "" : "No models registered.");
    } catch (error) {
      status(this.root, error.message);
    }
  }

  // One row of GET /api/admin/models (docs/http-api.md). Only a version that may serve and is
  // not serving offers a roll-back: the server refuses the others (409).
  row(model) {
    const gate = model.gate?.checks ? pill(model.gate.passed === false ? "failed" : "passed") : "–";
    const action =
      model.status === "serving" || model.status === "rejected"
        ? pill(model.status)
        : el(
            "button",
            {
              type: "button",
              "aria-label": `Roll back to ${model.version}`,
              onclick: () => this.rollback(model.version),
            },
            "Roll back",
          );
    return el(
      "tr",
      { "data-version": model.version, "data-status": model.status },
      el("td", {}, el("b", {}, model.version)),
      el("td", {}, model.parent ?? "–"),
      el("td", {}, percent(model.mnist_accuracy)),
      el("td", {}, gate),
      el("td", {}, el("code", { title: model.sha256 ?? "" }, (model.sha256 ?? "").slice(0, 12) || "–")),
      el("td", {}, created(model.created_at)),
      el("td", {}, action),
    );
  }

  async rollback(version) {
    if (!confirm(`Serve ${version} again? This opens a new round bound to it.`)) return;
    try {
      await adminApi(`/api/admin/models/${encodeURIComponent(version)}/rollback`, { method: "POST", body: {} });
      toast(`Now serving ${version} in a new round.`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }
}

// "2026-12-02 05:31" in the admin's own time zone, from the registry's ISO time (or seconds).
function created(at) {
  if (at === null || at === undefined) return "–";
  const date = new Date(typeof at === "number" ? at * 1000 : at);
  if (Number.isNaN(date.getTime())) return "–";
  const two = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}
