// Disputed claims: the drawing, the claim, the model's guess and the votes; the admin decides.

import { showDrawing } from "../replay.js";
import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { el, status } from "./dom.js";

const ANSWERS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "x"];

export class ReviewPanel {
  constructor(root) {
    this.root = root;
    root.querySelector("[data-action=reload]").addEventListener("click", () => this.load());
  }

  async load() {
    const list = this.root.querySelector(".review-list");
    try {
      const claims = await adminApi("/api/admin/review");
      list.replaceChildren(...claims.map((claim) => this.item(claim)));
      status(this.root, claims.length ? "" : "Nothing disputed. Consensus is doing its job.");
    } catch (error) {
      list.replaceChildren();
      status(this.root, error.message);
    }
  }

  item(claim) {
    const canvas = el("canvas", { width: 280, height: 280, role: "img", "aria-label": `Drawing of claim ${claim.attempt_id}` });
    const drawing = claim.drawing ?? (claim.png ? { png: claim.png } : { strokes: claim.strokes ?? [] });
    showDrawing(canvas, drawing, { animate: false });
    // The audit: every vote, whether and how much it counted, and why (new account, model oracle…).
    const votes = (claim.votes ?? [])
      .map((vote) => {
        const weight = vote.counted ? `weight ${(+(vote.weight ?? 1)).toFixed(2)}` : "not counted";
        return `${vote.name ?? vote.voter_id}: ${vote.answer} (${weight}${vote.reason ? `, ${vote.reason.replace("_", " ")}` : ""})`;
      })
      .join("; ");
    const decide = el(
      "div",
      { class: "decide", role: "group", "aria-label": `Decide claim ${claim.attempt_id}` },
      ANSWERS.map((answer) =>
        el(
          "button",
          {
            type: "button",
            "aria-label": answer === "x" ? "Not a digit" : `It is a ${answer}`,
            onclick: () => this.decide(claim.attempt_id, answer),
          },
          answer === "x" ? "not a digit" : answer,
        ),
      ),
    );
    return el(
      "article",
      { class: "review-item" },
      canvas,
      el(
        "div",
        {},
        el("p", {}, el("b", {}, `Claim ${claim.attempt_id}`), ` by ${claim.player ?? claim.player_name ?? "?"}`),
        el("p", {}, `Claimed ${claim.label}; the model saw ${claim.predicted ?? claim.prediction?.label ?? "?"}.`),
        el("p", {}, `Votes: ${votes || "none"}`),
        decide,
      ),
    );
  }

  async decide(attemptId, answer) {
    const label = answer === "x" ? "x" : Number(answer);
    try {
      await adminApi(`/api/admin/review/${attemptId}`, { method: "POST", body: { label } });
      toast(`Claim ${attemptId} decided: ${answer === "x" ? "not a digit" : answer}.`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.load();
  }
}
