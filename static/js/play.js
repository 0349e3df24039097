// The Draw view: the pad, the live guess while drawing, "this is a 7" and the result.

import { GuessBars } from "./bars.js";
import { DrawingPad } from "./canvas.js";
import { DrawingStream } from "./drawing-stream.js";
import { showError, toast } from "./toast.js";

const PREDICT_EVERY_MS = 110; // ~9 live guesses a second at most

const SETTLED = {
  verified: (m) => `Verified! Your ${m.label} fooled the model.`,
  rejected_model_right: (m) => `Not counted: validators agreed with the model on your ${m.label}.`,
  rejected_not_digit: () => "Not counted: validators did not see a digit.",
  relabelled: (m) => `Not counted: validators read your ${m.label} as a ${m.consensus_label}.`,
  disputed: (m) => `Your ${m.label} is disputed; an admin will decide.`,
};

export class PlayView {
  constructor(socket, root) {
    this.socket = socket;
    this.root = root;
    this.pad = new DrawingPad(root.querySelector("#pad"));
    this.stream = new DrawingStream(socket); // sends only what changed (protocol v2)
    this.stream.onResync = () => this.predict();
    this.bars = new GuessBars(root.querySelector("#bars"), root.querySelector("#guess-summary"));
    this.note = root.querySelector("#guess-note");
    this.result = root.querySelector("#result");
    this.submitButton = root.querySelector("#submit");
    this.digits = [...root.querySelectorAll("#picker [data-digit]")];
    this.label = null;
    this.latestPredict = null; // id of the newest predict: replies to older ones are stale
    this.lastSentAt = 0;
    this.trailing = null;
    this.submitting = false;
    this.onSubmitted = null; // (drawing, reply) after a submission is acknowledged

    this.pad.addEventListener("change", () => this.drawingChanged());
    this.pad.addEventListener("full", () => toast("That is as much ink as a digit can take.", "info"));
    root.querySelector("#undo").addEventListener("click", () => this.pad.undo());
    root.querySelector("#clear").addEventListener("click", () => this.pad.clear());
    for (const button of this.digits) {
      button.addEventListener("click", () => this.pick(Number(button.dataset.digit)));
    }
    this.submitButton.addEventListener("click", () => this.submit());
    socket.on("prediction", (message) => this.predicted(message));
    socket.on("claim_settled", (message) => this.settled(message));
    socket.on("rejoined", () => this.refresh());
    this.updateSubmit();
  }

  // Keys while the Draw view is showing: 0–9 pick, Enter submits, Backspace undoes.
  key(event) {
    if (/^[0-9]$/.test(event.key)) this.pick(Number(event.key));
    else if (event.key === "Enter" && event.target === document.body) this.submit();
    else if ((event.key === "z" && (event.ctrlKey || event.metaKey)) || event.key === "Backspace") {
      this.pad.undo();
    } else return false;
    return true;
  }

  pick(digit) {
    this.label = digit;
    for (const button of this.digits) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.digit) === digit));
    }
    this.updateSubmit();
  }

  drawingChanged() {
    this.updateSubmit();
    if (this.pad.isEmpty) {
      clearTimeout(this.trailing);
      this.trailing = null;
      this.latestPredict = null;
      this.bars.reset();
      this.note.textContent = "";
      return;
    }
    this.schedulePredict();
  }

  // Throttle with a trailing call: while drawing, at most one guess per interval, and always
  // one for the final shape.
  schedulePredict() {
    if (this.trailing) return;
    const wait = Math.max(0, this.lastSentAt + PREDICT_EVERY_MS - performance.now());
    this.trailing = setTimeout(() => {
      this.trailing = null;
      this.predict();
    }, wait);
  }

  predict() {
    if (this.pad.isEmpty) return;
    this.lastSentAt = performance.now();
    const id = this.socket.newId("p");
    if (this.stream.sync(this.pad.strokes, id)) this.latestPredict = id;
  }

  // After a reconnect the old request is gone: ask again for what is on the pad now.
  refresh() {
    this.latestPredict = null;
    if (!this.pad.isEmpty) this.predict();
  }

  predicted(message) {
    if (message.id !== this.latestPredict) return;
    this.bars.show(message.probs);
    this.note.textContent = "";
  }

  // Errors about live guesses stay next to the bars (and stale ones are dropped).
  ownsError(message) {
    if (typeof message.id !== "string" || !message.id.startsWith("p")) return false;
    if (message.id === this.latestPredict) this.note.textContent = message.message;
    return true;
  }

  updateSubmit() {
    const ready = !this.pad.isEmpty && this.label !== null && !this.submitting;
    this.submitButton.disabled = !ready;
    this.submitButton.textContent =
      this.label === null ? "Pick a digit, then submit" : `Submit: this is a ${this.label}`;
  }

  async submit() {
    if (this.pad.isEmpty || this.label === null || this.submitting) return;
    this.submitting = true;
    this.updateSubmit();
    try {
      const drawing = this.pad.drawing();
      const reply = await this.stream.submit(this.pad.strokes, this.label);
      this.showResult(reply);
      this.onSubmitted?.(drawing, reply);
      this.pad.clear();
      this.pick(null);
    } catch (error) {
      showError(error);
    } finally {
      this.submitting = false;
      this.updateSubmit();
    }
  }

  showResult(reply) {
    const seen = reply.prediction.label;
    const confidence = Math.round(Math.max(...reply.prediction.probs) * 100);
    const fooled = reply.outcome === "pending";
    this.result.className = `result ${fooled ? "result-fooled" : "result-caught"}`;
    this.result.innerHTML = "";
    const headline = document.createElement("strong");
    headline.textContent = fooled ? "Fooled it!" : `The model saw a ${seen}.`;
    const detail = document.createElement("span");
    detail.textContent = fooled
      ? `It read your ${reply.label} as a ${seen} (${confidence}%). Waiting for verification…`
      : `${confidence}% sure, and right. Try a stranger ${reply.label}!`;
    this.result.append(headline, detail);
    this.result.hidden = false;
    void this.result.offsetWidth; // restart the pop animation
    this.result.classList.add("pop");
  }

  settled(message) {
    const describe = SETTLED[message.outcome] ?? (() => `Your claim was settled: ${message.outcome}.`);
    const points = message.points ?? 0;
    const score = points ? ` ${points > 0 ? "+" : "−"}${Math.abs(points)} points.` : "";
    toast(describe(message) + score, message.outcome === "verified" ? "good" : "bad", 9000);
  }
}
