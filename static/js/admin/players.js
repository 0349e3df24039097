// Players: find one, then ban, quarantine (their drawings stop counting) or reinstate; mark a
// trusted validator as a moderator (their vote decides a claim, so a small game settles).

import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { el, fillTable, pill, status } from "./dom.js";

const ACTIONS = [
  ["ban", "Ban", "danger"],
  ["quarantine", "Quarantine", ""],
  ["reinstate", "Reinstate", ""],
];

export class PlayersPanel {
  constructor(root) {
    this.root = root;
    this.query = "";
    root.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.query = new FormData(event.target).get("query").trim();
      this.load();
    });
  }

  async load() {
    try {
      const players = await adminApi(`/api/admin/players?query=${encodeURIComponent(this.query)}`);
      fillTable(this.root.querySelector("table"), players.map((p) => this.row(p)));
      status(this.root, players.length ? "" : "No players match.");
    } catch (error) {
      status(this.root, error.message);
    }
  }

  row(player) {
    const state = player.status ?? player.state ?? (player.banned ? "banned" : "active");
    const flags = ["moderator", "established", "model_oracle", "clustered"]
      .filter((key) => player[key])
      .map((key) => key.replace("_", " "));
    const stats = ["attempts", "fools", "votes", "score", "trust", "weight"]
      .filter((key) => player[key] !== undefined)
      .map((key) => `${key} ${typeof player[key] === "number" ? +player[key].toFixed(2) : player[key]}`)
      .concat(flags)
      .join(" · ");
    const moderator = player.moderator
      ? el("button", { type: "button", "aria-label": `Unmark ${player.name} as moderator`, onclick: () => this.moderator(player, false) }, "Unmark moderator")
      : el("button", { type: "button", "aria-label": `Mark ${player.name} as moderator`, onclick: () => this.moderator(player, true) }, "Mark moderator");
    const actions = el(
      "div",
      { class: "actions" },
      ACTIONS.map(([action, label, className]) =>
        el(
          "button",
          {
            type: "button",
            class: className,
            "aria-label": `${label} ${player.name}`,
            onclick: () => this.moderate(player, action, label),
          },
          label,
        ),
      ).concat([moderator]),
    );
    return el(
      "tr",
      {},
      el("td", {}, String(player.id)),
      el("td", {}, player.name),
      el("td", {}, pill(state)),
      el("td", {}, stats || "–"),
      el("td", {}, actions),
    );
  }

  async moderator(player, marked) {
    try {
      await adminApi(`/api/admin/players/${player.id}/moderator`, { method: marked ? "POST" : "DELETE" });
      toast(`${player.name} ${marked ? "is now" : "is no longer"} a moderator.`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }

  async moderate(player, action, label) {
    if (action === "ban" && !confirm(`Ban ${player.name}?`)) return;
    try {
      await adminApi(`/api/admin/players/${player.id}/${action}`, { method: "POST", body: {} });
      toast(`${label}: ${player.name}.`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }
}
