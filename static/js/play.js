// The Draw view: the pad, the live guess while drawing, "this is a 7" and the result.

import { GuessBars } from "./bars.js";
import { DrawingPad } from "./canvas.js";
import { DrawingStream } from "./drawing-stream.js";
import { showError, toast } from "./toast.js";

const PREDICT_EVERY_MS = 110; // ~9 live guesses a second at most
const MAX_UPLOAD_BYTES = 256 * 1024; // the protocol's limit for a PNG drawing

const CLAIM_KEY = "ftm.claim"; // the last claim this browser submitted, for after a reload

// A settled claim (a `claim_settled` push, or one of the welcome's `claims`): headline, detail.
const SETTLED = {
  verified: (m) => ["Verified!", `Validators read your ${m.label} too: it fooled the model.`],
  rejected_model_right: (m) => ["Not counted.", `Validators agreed with the model on your ${m.label}.`],
  rejected_not_digit: () => ["Not counted.", "Validators did not see a digit."],
  relabelled: (m) => ["Not counted.", `Validators read your ${m.label} as a ${m.consensus_label}.`],
  disputed: (m) => ["Disputed.", `Your ${m.label} is disputed; an admin will decide.`],
};

function describeSettled(message) {
  const [headline, detail] = SETTLED[message.outcome]?.(message) ?? [
    "Settled.",
    `Your claim was settled: ${message.outcome}.`,
  ];
  const points = message.points ?? 0;
  const score = points ? ` ${points > 0 ? "+" : "−"}${Math.abs(points)} points.` : "";
  return [headline, detail + score];
}

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
    this.claim = null; // the pending claim the result box follows

    this.pad.addEventListener("change", () => this.drawingChanged());
    this.pad.addEventListener("full", () => toast("That is as much ink as a digit can take.", "info"));
    root.querySelector("#undo").addEventListener("click", () => this.undo());
    root.querySelector("#clear").addEventListener("click", () => this.clear());
    this.uploadInput = root.querySelector("#upload");
    this.preview = root.querySelector("#upload-preview");
    this.upload = null; // a PNG (base64) the player chose instead of drawing
    this.uploadInput.addEventListener("change", () => this.useUpload());
    for (const button of this.digits) {
      button.addEventListener("click", () => this.pick(Number(button.dataset.digit)));
    }
    this.submitButton.addEventListener("click", () => this.submit());
    socket.on("prediction", (message) => this.predicted(message));
    socket.on("claim_settled", (message) => this.settled(message));
    socket.on("joined", (welcome) => this.caughtUp(welcome));
    socket.on("rejoined", (welcome) => {
      this.caughtUp(welcome);
      this.refresh();
    });
    this.updateSubmit();
  }

  // Keys while the Draw view is showing: 0–9 pick, Enter submits, Backspace undoes.
  key(event) {
    if (/^[0-9]$/.test(event.key)) this.pick(Number(event.key));
    else if (event.key === "Enter" && !event.target.closest?.("button, a, label")) this.submit();
    else if ((event.key === "z" && (event.ctrlKey || event.metaKey)) || event.key === "Backspace") {
      this.undo();
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

  get hasDrawing() {
    return this.upload !== null || !this.pad.isEmpty;
  }

  // What goes to the server: the uploaded picture, else the strokes on the pad.
  drawing() {
    return this.upload !== null ? { png: this.upload } : this.pad.drawing();
  }

  undo() {
    if (this.upload !== null) this.clear();
    else this.pad.undo();
  }

  clear() {
    this.dropUpload();
    this.pad.clear();
  }

  dropUpload() {
    if (this.upload === null) return;
    this.upload = null;
    this.uploadInput.value = "";
    this.preview.hidden = true;
    this.preview.removeAttribute("src");
  }

  // The keyboard (and assistive) way to play: a PNG picture of a digit instead of drawing.
  async useUpload() {
    const file = this.uploadInput.files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD_BYTES) {
      showError({ message: "That picture is too large: a PNG of at most 256 KiB, please." });
      this.uploadInput.value = "";
      return;
    }
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    this.pad.clear();
    this.upload = String(dataUrl).split(",", 2)[1];
    this.preview.src = dataUrl;
    this.preview.alt = `Your picture: ${file.name}`;
    this.preview.hidden = false;
    this.drawingChanged();
    this.note.textContent = "Picture loaded. Press the digit key it shows, then Enter to submit.";
    this.root.querySelector("#picker").focus();
  }

  drawingChanged() {
    if (!this.pad.isEmpty) this.dropUpload(); // drawing again replaces the picture
    this.updateSubmit();
    if (!this.hasDrawing) {
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
    if (!this.hasDrawing) return;
    this.lastSentAt = performance.now();
    const id = this.socket.newId("p");
    if (this.upload !== null) {
      // A picture is sent whole; drawn strokes go incrementally (protocol v2).
      if (this.socket.send({ type: "predict", id, drawing: this.drawing() })) {
        this.latestPredict = id;
      }
    } else if (this.stream.sync(this.pad.strokes, id)) {
      this.latestPredict = id;
    }
  }

  // After a reconnect the old request is gone: ask again for what is on the pad now.
  refresh() {
    this.latestPredict = null;
    if (this.hasDrawing) this.predict();
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
    const ready = this.hasDrawing && this.label !== null && !this.submitting;
    this.submitButton.disabled = !ready;
    this.submitButton.textContent =
      this.label === null ? "Pick a digit, then submit" : `Submit: this is a ${this.label}`;
  }

  async submit() {
    if (!this.hasDrawing || this.label === null || this.submitting) return;
    this.submitting = true;
    this.updateSubmit();
    try {
      const drawing = this.drawing();
      const reply =
        this.upload !== null
          ? await this.socket.request({ type: "submit", drawing, label: this.label })
          : await this.stream.submit(this.pad.strokes, this.label);
      this.showResult(reply);
      this.result.scrollIntoView({ block: "nearest" }); // below Submit on a phone
      this.onSubmitted?.(drawing, reply);
      this.clear();
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
    this.claim = fooled ? { attempt_id: reply.attempt_id, label: reply.label, seen, confidence } : null;
    this.remember();
    if (fooled) this.showWaiting();
    else {
      this.box("result-caught", `The model saw a ${seen}.`, `${confidence}% sure, and right. Try a stranger ${reply.label}!`);
    }
  }

  showWaiting() {
    const { label, seen, confidence } = this.claim;
    const detail = `It read your ${label} as a ${seen} (${confidence}%). Waiting for verification…`;
    this.box("result-fooled", "Fooled it!", detail, "pending");
  }

  box(kind, headline, detail, outcome = "") {
    this.result.className = `result ${kind}`;
    this.result.dataset.outcome = outcome;
    const strong = document.createElement("strong");
    strong.textContent = headline;
    const span = document.createElement("span");
    span.textContent = detail;
    this.result.replaceChildren(strong, span);
    this.result.hidden = false;
    void this.result.offsetWidth; // restart the pop animation
    this.result.classList.add("pop");
  }

  settled(message) {
    const [headline, detail] = describeSettled(message);
    if (message.attempt_id === this.claim?.attempt_id) this.showOutcome(message);
    else toast(`${headline} ${detail}`, message.outcome === "verified" ? "good" : "bad", 9000);
  }

  // The result box follows its claim to the outcome.
  showOutcome(message) {
    const [headline, detail] = describeSettled(message);
    const kind = message.outcome === "verified" ? "result-verified" : message.outcome === "disputed" ? "result-fooled" : "result-rejected";
    this.box(kind, headline, detail, message.outcome);
    if (message.outcome !== "disputed") {
      this.claim = null; // decided: nothing more will come
      this.remember();
    }
  }

  // On (re)joining, the welcome lists the player's latest decided claims: an outcome that
  // arrived while this page was away (or before a reload) shows now; a claim still missing
  // from it is still waiting.
  caughtUp(welcome) {
    const playerId = welcome.player?.id;
    if (!this.claim) {
      const saved = JSON.parse(localStorage.getItem(CLAIM_KEY) ?? "null");
      if (saved?.player_id !== playerId) return;
      this.claim = saved.claim;
      this.showWaiting();
    }
    const decided = (welcome.claims ?? []).find((c) => c.attempt_id === this.claim.attempt_id);
    if (decided) this.showOutcome(decided);
  }

  remember() {
    if (this.claim) {
      localStorage.setItem(CLAIM_KEY, JSON.stringify({ player_id: this.socket.welcome?.player?.id, claim: this.claim }));
    } else {
      localStorage.removeItem(CLAIM_KEY);
    }
  }
}
