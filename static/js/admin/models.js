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
      const payload = await adminApi("/api/admin/models");
      const models = Array.isArray(payload) ? payload : (payload.models ?? []);
      const serving = payload.serving ?? models.find((m) => m.serving)?.version;
      fillTable(this.root.querySelector("table"), models.map((m) => this.row(m, serving)));
      status(this.root, models.length ? "" : "No models registered.");
    } catch (error) {
      status(this.root, error.message);
    }
  }

  row(model, serving) {
    const accuracy = model.mnist_test_accuracy ?? model.metrics?.mnist_accuracy;
    const gate = model.gate ? pill(model.gate.passed === false ? "failed" : "passed") : "–";
    const action =
      model.version === serving
        ? pill("serving")
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
      {},
      el("td", {}, el("b", {}, model.version)),
      el("td", {}, model.parent ?? "–"),
      el("td", {}, percent(accuracy)),
      el("td", {}, gate),
      el("td", {}, el("code", { title: model.sha256 ?? "" }, (model.sha256 ?? "").slice(0, 12) || "–")),
      el("td", {}, (model.created ?? "").replace("T", " ").slice(0, 16) || "–"),
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
