// The end-of-session summary: what this visit achieved — drawings, fools, the best one, what was
// verified — and the rank change since the page joined (the welcome's stats against one
// `GET /api/players/{id}/stats` when the player clicks "End session").

import { api } from "./api.js";

export class SessionSummary {
  constructor(socket, dialog, button) {
    this.socket = socket;
    this.dialog = dialog;
    this.button = button;
    this.start = null; // the welcome's stats when this page joined
    this.drawings = 0;
    this.fools = 0;
    this.best = null; // the fool the model was surest about: {label, seen, confidence}
    this.verified = 0;
    this.points = 0;

    socket.on("joined", (welcome) => {
      this.start = welcome.stats ?? null;
      this.button.hidden = welcome.player === null;
    });
    socket.on("claim_settled", (message) => {
      if (message.outcome === "verified") this.verified += 1;
      this.points += (message.points ?? 0) + bonus(message);
    });
    button.addEventListener("click", () => this.show());
    dialog.querySelector("[data-action=close]").addEventListener("click", () => dialog.close());
  }

  // After each acknowledged submission (play.js).
  submitted(reply) {
    this.drawings += 1;
    if (reply.outcome !== "pending") return;
    this.fools += 1;
    const confidence = reply.prediction.probs[reply.prediction.label];
    if (!this.best || confidence > this.best.confidence) {
      this.best = { label: reply.label, seen: reply.prediction.label, confidence };
    }
  }

  async show() {
    const lines = this.dialog.querySelector(".summary-lines");
    const playerId = this.socket.welcome?.player?.id;
    let now = null;
    try {
      if (playerId !== undefined) now = await api(`/api/players/${playerId}/stats`);
    } catch {
      // the rest of the summary is this page's own; the rank line says it is unknown
    }
    const best = this.best
      ? `your ${this.best.label}, read as a ${this.best.seen} (${Math.round(this.best.confidence * 100)}% sure)`
      : "no fool yet";
    const rows = [
      ["Drawings", String(this.drawings)],
      ["Fooled the model", String(this.fools)],
      ["Best fool", best],
      ["Verified so far", `${this.verified} (${this.points >= 0 ? "+" : "−"}${Math.abs(this.points)} points)`],
      ["All-time rank", rankChange(this.start?.all_rank, now?.all_rank, now !== null)],
    ];
    lines.replaceChildren(
      ...rows.flatMap(([term, value]) => {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        return [dt, dd];
      }),
    );
    if (!this.dialog.open) this.dialog.showModal();
  }
}

function bonus(message) {
  return (message.challenges ?? []).reduce((sum, prompt) => sum + prompt.bonus, 0);
}

function rankChange(before, after, known) {
  if (!known) return "unknown right now (the server did not answer)";
  const show = (rank) => (rank === null || rank === undefined ? "unranked" : `#${rank}`);
  if (before === after) return `${show(after)}, unchanged`;
  return `${show(before)} → ${show(after)}`;
}
