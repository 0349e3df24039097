// The round banner: which round, which model, how many times it has been fooled.

import { toast } from "./toast.js";

const STATE_WORDS = {
  scheduled: "about to start",
  open: "open",
  closing: "closing: claims still settling",
  closed: "closed",
};

export class RoundBanner {
  constructor(root) {
    this.root = root;
    this.round = null;
  }

  // `round` may be null when the server has no round yet.
  show(round) {
    const previous = this.round;
    this.round = round;
    const field = (name) => this.root.querySelector(`[data-field=${name}]`);
    if (!round) {
      field("number").textContent = "–";
      field("state").textContent = "no round yet";
      field("model").textContent = "–";
      field("fools").textContent = "0";
      field("attempts").textContent = "";
      this.root.dataset.state = "none";
      return;
    }
    field("number").textContent = round.number;
    field("state").textContent = STATE_WORDS[round.state] ?? round.state;
    field("model").textContent = round.model_version;
    field("fools").textContent = round.fools ?? 0;
    field("attempts").textContent =
      round.attempts === undefined ? "" : `in ${round.attempts} ${round.attempts === 1 ? "try" : "tries"}`;
    this.root.dataset.state = round.state;
    if (previous && previous.id !== round.id) {
      toast(`Round ${round.number} has begun: model ${round.model_version} is ready.`, "good");
      this.root.classList.remove("flash");
      void this.root.offsetWidth; // restart the animation
      this.root.classList.add("flash");
    }
  }
}
