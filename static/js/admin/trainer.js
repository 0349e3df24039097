// The trainer: a live progress bar (polled about once a second while a job runs), the gate's
// verdict, and cancel.

import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { el, fillTable, pill, status } from "./dom.js";

const FAST_MS = 1000;
const SLOW_MS = 10000;
const FINISHED = new Set(["done", "succeeded", "failed", "cancelled", "canceled", "error"]);

export class TrainerPanel {
  constructor(root, { onFinished }) {
    this.root = root;
    this.onFinished = onFinished;
    this.timer = null;
    this.lastState = null;
    this.cancelButton = root.querySelector("[data-action=cancel]");
    this.cancelButton.addEventListener("click", () => this.cancel());
  }

  stop() {
    clearTimeout(this.timer);
  }

  async poll() {
    this.stop();
    let job = null;
    let running = false;
    try {
      job = await adminApi("/api/admin/trainer");
      running = Boolean(job && job.state && !FINISHED.has(job.state));
      this.show(job, running);
      status(this.root, "");
    } catch (error) {
      status(this.root, error.message);
    }
    if (this.lastState && !FINISHED.has(this.lastState) && job && FINISHED.has(job.state)) {
      this.onFinished(job);
    }
    this.lastState = job?.state ?? null;
    this.timer = setTimeout(() => this.poll(), running ? FAST_MS : SLOW_MS);
  }

  show(job, running) {
    const summary = this.root.querySelector(".trainer-summary");
    const detail = this.root.querySelector(".trainer-detail");
    const bar = this.root.querySelector("progress");
    this.cancelButton.hidden = !running;
    if (!job || !job.state) {
      summary.textContent = "No training job yet.";
      detail.textContent = "";
      bar.value = 0;
      this.root.querySelector(".trainer-gate").replaceChildren();
      return;
    }
    summary.replaceChildren(`Job ${job.id ?? ""} `, pill(job.state));
    bar.value = fraction(job);
    const parts = [];
    if (running) parts.push(PHASES[job.phase] ?? (job.state === "queued" ? "waiting for a trainer" : "starting"));
    if (running && job.phase === "training") {
      parts.push(`epoch ${job.epoch}/${job.epochs}`, `step ${job.step}/${job.steps}`);
      if (typeof job.loss === "number") parts.push(`loss ${job.loss.toFixed(4)}`);
    }
    if (running && typeof job.eta_seconds === "number") parts.push(`about ${duration(job.eta_seconds)} left`);
    if (job.error) parts.push(`error: ${job.error}`);
    detail.textContent = parts.join(" · ");
    // job.note: too few drawings to learn from (server/learning/jobs/runner.py small_data_note).
    const note = job.note ? [el("p", { class: "trainer-note" }, job.note)] : [];
    this.root.querySelector(".trainer-gate").replaceChildren(...note, gateTable(job.gate));
  }

  async cancel() {
    try {
      await adminApi("/api/admin/trainer/cancel", { method: "POST", body: {} });
      toast("Training cancelled.", "info");
    } catch (error) {
      toast(error.message, "error");
    }
    this.poll();
  }
}

// What the trainer reports it is doing (server/learning/jobs/report.py).
const PHASES = {
  loading: "loading data",
  training: "training",
  exporting: "exporting to ONNX",
  gating: "gating: checking the candidate",
};

// The share of the training steps done, over all epochs (`step` of `steps` counts across
// them), so the bar only moves forward; it is full once training is done.
function fraction(job) {
  if (FINISHED.has(job.state)) return job.state === "failed" ? 0 : 1;
  if (job.phase === "exporting" || job.phase === "gating") return 1;
  if (job.phase !== "training" || !job.steps) return 0;
  return Math.min(1, job.step / job.steps);
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

// The gate's verdict (server/learning/gate.py): {"passed", "reason", "checks": [{"name", "passed",
// "reason", "value", "threshold"}]}, one row per check.
export function gateTable(gate) {
  if (!gate?.checks) return el("p", {}, "");
  const number = (v) => (typeof v === "number" ? String(+v.toFixed(4)) : "–");
  const rows = gate.checks.map((check) =>
    el(
      "tr",
      {},
      el("td", {}, check.name),
      el("td", {}, pill(check.passed ? "passed" : "failed")),
      el("td", {}, `${number(check.value)} (needs ${number(check.threshold)})`),
      el("td", {}, check.reason ?? ""),
    ),
  );
  const table = el(
    "table",
    { class: "stack" },
    el("thead", {}, el("tr", {}, ["Check", "Verdict", "Value", "Why"].map((h) => el("th", {}, h)))),
    el("tbody"),
  );
  fillTable(table, rows);
  const verdict = el("p", {}, "Gate: ", pill(gate.passed ? "passed" : "failed"), ` ${gate.reason ?? ""}`);
  return el("div", {}, verdict, table);
}
