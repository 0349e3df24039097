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
    socket.on("joined", () => this.active && this.next());
    socket.on("rejoined", () => this.refresh());
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
      await this.socket.request({ type: "vote", task_id: taskId, answer });
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
