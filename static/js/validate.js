// The Validate view: one blind task at a time, answered by a click or a key, then the next.

import { showDrawing } from "./replay.js";
import { showError } from "./toast.js";

const RETRY_EMPTY_MS = 15000;
// Errors that mean "this task is over for you": move on to the next one.
const SKIP_TASK = new Set([
  "unknown_task",
  "task_not_assigned",
  "task_settled",
  "own_drawing",
  "already_voted",
]);

export class ValidateView {
  constructor(socket, root) {
    this.socket = socket;
    this.root = root;
    this.canvas = root.querySelector("#task-canvas");
    this.stage = root.querySelector("#task-stage");
    this.empty = root.querySelector("#task-empty");
    this.emptyText = root.querySelector("#task-empty-text");
    this.answers = [...root.querySelectorAll("#answers [data-answer]")];
    this.task = null;
    this.busy = false;
    this.active = false;
    this.retry = null;
    this.cancelReplay = () => {};
    for (const button of this.answers) {
      button.addEventListener("click", () => this.answer(button.dataset.answer));
    }
    root.querySelector("#task-retry").addEventListener("click", () => this.next());
    root.querySelector("#task-replay").addEventListener("click", () => this.replay());
    this.progress = new Progress(root);
    socket.on("joined", (welcome) => {
      this.progress.start(welcome);
      if (this.active) this.next();
    });
    socket.on("rejoined", (welcome) => {
      this.progress.show(welcome);
      this.refresh();
    });
  }

  activate() {
    this.active = true;
    if (!this.task) this.next();
  }

  deactivate() {
    this.active = false;
    clearTimeout(this.retry);
  }

  // After a reconnect, assignments may be gone: ask for a fresh task.
  refresh() {
    this.task = null;
    if (this.active) this.next();
  }

  key(event) {
    const key = event.key.toLowerCase();
    if (!/^[0-9x]$/.test(key)) return false;
    this.answer(key);
    return true;
  }

  async next() {
    clearTimeout(this.retry);
    if (!this.active || this.busy) return;
    this.busy = true;
    try {
      const reply = await this.socket.request({ type: "task" });
      if (reply.type === "task") this.show(reply);
      else this.showEmpty("Nothing to check right now. Draw something, or wait a moment.");
    } catch (error) {
      if (error.code === "unknown_type") {
        this.showEmpty("Validation is not available on this server yet.");
      } else {
        showError(error);
        this.showEmpty(error.message);
      }
    } finally {
      this.busy = false;
    }
  }

  show(task) {
    this.task = task;
    this.stage.hidden = false;
    this.empty.hidden = true;
    this.setAnswersEnabled(true);
    this.replay();
  }

  replay() {
    if (!this.task) return;
    this.cancelReplay();
    this.cancelReplay = showDrawing(this.canvas, this.task.drawing);
  }

  showEmpty(text) {
    this.task = null;
    this.cancelReplay();
    this.stage.hidden = true;
    this.empty.hidden = false;
    this.emptyText.textContent = text;
    this.setAnswersEnabled(false);
    if (this.active) this.retry = setTimeout(() => this.next(), RETRY_EMPTY_MS);
  }

  async answer(raw) {
    if (!this.task || this.busy) return;
    const answer = raw === "x" ? "x" : Number(raw);
    this.busy = true;
    this.setAnswersEnabled(false);
    const taskId = this.task.task_id;
    try {
      this.progress.voted(await this.socket.request({ type: "vote", task_id: taskId, answer }));
    } catch (error) {
      showError(error);
      if (!SKIP_TASK.has(error.code)) {
        this.busy = false;
        this.setAnswersEnabled(true);
        return;
      }
    }
    this.busy = false;
    this.task = null;
    this.next();
  }

  setAnswersEnabled(enabled) {
    for (const button of this.answers) button.disabled = !enabled;
  }
}

// What each vote earned (the `voted` reply, docs/protocol.md): a "+1" that rises and fades, a
// running tally for this page's session, the gold streak and the warm-up meter. The welcome
// carries the streak and meter too, so a reconnect or reload shows where the player is.
const FEEDBACK = {
  right: (points) => `Right! ${signed(points)}`,
  // Never the expected digit: only that this was not it.
  wrong: (points) => `Not what we expected. ${signed(points)}`,
  pending: () => "Vote in. It earns a point if the crowd settles on your answer.",
  late: () => "This drawing was settled meanwhile: no points, but it counts for your standing.",
};

function signed(points) {
  return points < 0 ? `−${-points}` : `+${points}`;
}

class Progress {
  constructor(root) {
    this.warmup = root.querySelector("#warmup");
    this.meter = root.querySelector("#warmup-meter");
    this.warmupText = root.querySelector("#warmup-text");
    this.sessionPoints = root.querySelector("#session-points");
    this.streak = root.querySelector("#streak");
    this.badge = root.querySelector("#vote-points");
    this.feedback = root.querySelector("#vote-feedback");
    this.session = 0;
  }

  // A new player on this page: a new session.
  start(welcome) {
    this.session = 0;
    this.sessionPoints.textContent = "0";
    this.badge.textContent = "";
    this.feedback.textContent = "";
    this.show(welcome);
  }

  show({ streak, warmup }) {
    if (streak === undefined) return; // a spectator, or a server without validation progress
    this.streak.textContent = String(streak);
    this.warmup.hidden = !warmup;
    if (!warmup) return;
    const done = warmup.answered >= warmup.needed;
    this.meter.max = warmup.needed;
    this.meter.value = warmup.answered;
    this.warmup.dataset.done = String(done);
    this.warmupText.textContent = warmupText(warmup);
  }

  voted(reply) {
    if (!reply.result) return; // a resend's acknowledgement: told already
    this.session += reply.points;
    this.sessionPoints.textContent = String(this.session);
    this.badge.classList.remove("rise");
    this.badge.textContent = reply.points ? signed(reply.points) : "";
    this.badge.dataset.sign = reply.points < 0 ? "-" : "+";
    void this.badge.offsetWidth; // restart the animation
    if (reply.points) this.badge.classList.add("rise");
    this.show(reply);
    const said = [FEEDBACK[reply.result]?.(reply.points) ?? ""];
    if (reply.result === "right" && reply.streak > 1) said.push(`${reply.streak} in a row!`);
    if (reply.warmup) said.push(warmupText(reply.warmup));
    this.feedback.textContent = said.join(" ");
  }
}

function warmupText({ answered, needed }) {
  return answered >= needed
    ? "Warm-up done: next come other players' drawings."
    : `${answered} of ${needed} warm-up answers — then you check other players' drawings.`;
}
