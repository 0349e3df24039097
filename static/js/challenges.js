// This round's challenges ("fool it with a 7", docs/protocol.md `challenges`): the prompts an
// admin attached, each marked once the player met it (a verified claim earns its bonus).

import { api } from "./api.js";
import { toast } from "./toast.js";

export class ChallengesView {
  constructor(socket, root) {
    this.root = root;
    this.list = root.querySelector(".challenge-list");
    this.roundId = null;
    this.prompts = [];
    this.met = new Set();

    const welcomed = (welcome) => this.load(welcome.challenges);
    socket.on("joined", welcomed);
    socket.on("rejoined", welcomed);
    socket.on("challenges", (message) => {
      if (message.round_id === this.roundId) this.show(message.challenges);
    });
    socket.on("round", ({ round }) => {
      if (round && round.state === "open" && round.id !== this.roundId) this.fetch();
    });
    socket.on("claim_settled", (message) => this.settled(message));
  }

  load(challenges) {
    if (!challenges) return;
    this.roundId = challenges.round_id;
    this.met = new Set(challenges.met);
    this.show(challenges.challenges);
  }

  // A new round: its prompts (none met yet).
  async fetch() {
    try {
      this.load(await api("/api/challenges"));
    } catch {
      // the socket's status already tells the player when the server is unreachable
    }
  }

  settled(message) {
    if (!message.challenges?.length) return;
    for (const prompt of message.challenges) {
      this.met.add(prompt.id);
      toast(`Challenge met: ${prompt.text}. +${prompt.bonus} bonus points!`, "good", 9000);
    }
    this.show(this.prompts);
  }

  show(prompts) {
    this.prompts = prompts;
    this.root.hidden = prompts.length === 0;
    this.list.replaceChildren(
      ...prompts.map((prompt) => {
        const item = document.createElement("li");
        const done = this.met.has(prompt.id);
        item.dataset.challenge = String(prompt.id);
        item.dataset.met = String(done);
        item.textContent = `${done ? "✓ " : ""}${prompt.text} `;
        const bonus = document.createElement("b");
        bonus.textContent = `+${prompt.bonus}`;
        item.append(bonus);
        if (done) item.setAttribute("aria-label", `${prompt.text}: done, +${prompt.bonus} earned`);
        return item;
      }),
    );
  }
}
