// Rounds: see them all, open or close one, launch the next (retrain, gate, open).

import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { cells, el, fillTable, pill, status } from "./dom.js";

export class RoundsPanel {
  constructor(root, { onLaunched }) {
    this.root = root;
    this.onLaunched = onLaunched;
    root.querySelector("[data-action=next]").addEventListener("click", () => this.launchNext());
    root.querySelector("[data-action=start]").addEventListener("click", () => this.startRound());
    root.querySelector("[data-action=reload]").addEventListener("click", () => this.load());
  }

  async load() {
    try {
      const rounds = await adminApi("/api/admin/rounds");
      fillTable(this.root.querySelector("table"), rounds.map((r) => this.row(r)));
      status(this.root, rounds.length ? "" : "No rounds yet.");
    } catch (error) {
      status(this.root, error.message);
    }
  }

  row(round) {
    const actions = el("div", { class: "actions" });
    const act = (label, path, body, className) =>
      actions.append(
        el(
          "button",
          {
            type: "button",
            class: className,
            "aria-label": `${label}: round ${round.number}`,
            onclick: () => this.act(path, body, `${label}: round ${round.number}`),
          },
          label,
        ),
      );
    const base = `/api/admin/rounds/${round.id}`;
    if (round.state === "scheduled") act("Open", `${base}/open`);
    if (round.state === "open") act("Close", `${base}/close`, { state: "closing" });
    if (round.state !== "closed") act("Finish", `${base}/close`, { state: "closed" }, "danger");
    return cells(`#${round.number}`, pill(round.state), round.model_version, round.attempts, round.fools, actions);
  }

  async act(path, body, done) {
    try {
      await adminApi(path, { method: "POST", body: body ?? {} });
      toast(`${done}: done.`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }

  async startRound() {
    await this.act("/api/admin/rounds", { open: true }, "New round");
  }

  async launchNext() {
    try {
      await adminApi("/api/admin/rounds/next", { method: "POST", body: {} });
      toast("Retraining started: the next round opens when the new model passes its gate.", "good");
      this.onLaunched();
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }
}
