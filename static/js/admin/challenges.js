// Challenges: attach prompts ("fool it with a 7", bonus points) to a round that is not closed,
// and see the prompts it carries (docs/http-api.md, game_rules/challenges.py).

import { toast } from "../toast.js";
import { adminApi } from "./client.js";
import { el, status } from "./dom.js";

export class ChallengesPanel {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("form");
    this.round = this.form.elements.round;
    this.list = root.querySelector(".challenge-admin-list");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.attach();
    });
    this.round.addEventListener("change", () => this.showPrompts());
  }

  async load() {
    try {
      const rounds = (await adminApi("/api/admin/rounds")).filter((r) => r.state !== "closed");
      const chosen = this.round.value;
      this.round.replaceChildren(
        ...rounds.map((r) => el("option", { value: r.id }, `#${r.number} (${r.state})`)),
      );
      if (rounds.some((r) => String(r.id) === chosen)) this.round.value = chosen;
      else if (rounds.some((r) => r.state === "open")) {
        this.round.value = String(rounds.find((r) => r.state === "open").id);
      }
      status(this.root, rounds.length ? "" : "No round is open or scheduled.");
      await this.showPrompts();
    } catch (error) {
      status(this.root, error.message);
    }
  }

  async showPrompts() {
    if (!this.round.value) return this.list.replaceChildren();
    const { challenges } = await adminApi(`/api/admin/rounds/${this.round.value}/challenges`);
    this.list.replaceChildren(
      ...challenges.map((c) => el("li", {}, `${c.text} `, el("b", {}, `+${c.bonus}`))),
    );
    if (!challenges.length) this.list.append(el("li", { class: "note" }, "No prompts: free play."));
  }

  async attach() {
    const fields = this.form.elements;
    const body = { label: Number(fields.label.value) };
    if (fields.model_label.value !== "") body.model_label = Number(fields.model_label.value);
    if (fields.bonus.value !== "") body.bonus = Number(fields.bonus.value);
    try {
      const prompt = await adminApi(`/api/admin/rounds/${this.round.value}/challenges`, {
        method: "POST",
        body,
      });
      toast(`Attached: ${prompt.text} (+${prompt.bonus}).`, "good");
    } catch (error) {
      toast(error.message, "error");
    }
    this.showPrompts();
  }
}
