// Live leaderboards: three boards behind tabs, your own row pinned with its neighbours, and rows
// that glide to their new rank when scores change.

import { showError } from "./toast.js";

const BOARDS = ["round", "all", "validators"];

export class LeaderboardView {
  constructor(socket, root, { playerId = () => null } = {}) {
    this.socket = socket;
    this.root = root;
    this.playerId = playerId;
    this.list = root.querySelector(".board-rows");
    this.you = root.querySelector(".board-you");
    this.status = root.querySelector(".board-status");
    this.tabs = [...root.querySelectorAll("[role=tab]")];
    this.board = "round";
    this.ranks = new Map(); // board → (player_id → rank) last shown, to animate changes
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab.dataset.board));
      tab.addEventListener("keydown", (event) => this.arrowKeys(event));
    }
    socket.on("leaderboard", (message) => this.render(message));
    // A fresh subscription after joining, after a reconnect and when a new round begins.
    for (const event of ["joined", "rejoined", "round"]) socket.on(event, () => this.subscribe());
  }

  // Tabs follow the ARIA pattern: arrows move between them.
  arrowKeys(event) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const index = (BOARDS.indexOf(this.board) + step + BOARDS.length) % BOARDS.length;
    this.select(BOARDS[index]);
    this.tabs[index].focus();
  }

  select(board) {
    this.board = board;
    for (const tab of this.tabs) {
      const selected = tab.dataset.board === board;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    this.subscribe();
  }

  async subscribe() {
    const board = this.board;
    try {
      const reply = await this.socket.request({ type: "leaderboard", board });
      this.render(reply);
    } catch (error) {
      if (board !== this.board) return;
      if (error.code === "unknown_type") {
        this.showStatus("Leaderboards are not available on this server yet.");
      } else if (error.code !== "offline") {
        showError(error);
      }
    }
  }

  showStatus(text) {
    this.status.textContent = text;
    this.status.hidden = !text;
  }

  render(message) {
    if (message.board !== this.board) return;
    const before = new Map(
      [...this.list.children].map((row) => [row.dataset.player, row.getBoundingClientRect().top]),
    );
    const previous = this.ranks.get(message.board) ?? new Map();
    const me = this.playerId();
    this.list.replaceChildren(
      ...message.top.map((entry) => this.row(entry, previous.get(entry.player_id), me)),
    );
    this.ranks.set(message.board, new Map(message.top.map((e) => [e.player_id, e.rank])));
    this.showStatus(message.top.length ? "" : "No scores yet: be the first!");
    this.glide(before);
    this.renderYou(message.you, message.top, me);
  }

  row(entry, previousRank, me) {
    const row = document.createElement("li");
    row.dataset.player = entry.player_id;
    row.className = "board-row";
    if (entry.player_id === me) row.classList.add("mine");
    if (previousRank !== undefined && previousRank !== entry.rank) {
      row.classList.add(entry.rank < previousRank ? "rose" : "fell");
    }
    const rank = document.createElement("span");
    rank.className = "board-rank";
    rank.textContent = `#${entry.rank}`;
    const name = document.createElement("span");
    name.className = "board-name";
    name.textContent = entry.name;
    const score = document.createElement("span");
    score.className = "board-score";
    score.textContent = entry.score;
    row.append(rank, name, score);
    return row;
  }

  // FLIP: each row starts where it was and slides to its new place.
  glide(before) {
    if (matchMedia("(prefers-reduced-motion: reduce)").matches) return;
    for (const row of this.list.children) {
      const top = before.get(row.dataset.player);
      if (top === undefined) continue;
      const shift = top - row.getBoundingClientRect().top;
      if (!shift) continue;
      row.animate([{ transform: `translateY(${shift}px)` }, { transform: "none" }], {
        duration: 450,
        easing: "cubic-bezier(.2,.8,.2,1)",
      });
    }
  }

  renderYou(you, top, me) {
    this.you.replaceChildren();
    if (!you) {
      this.you.hidden = true;
      return;
    }
    this.you.hidden = false;
    const line = document.createElement("p");
    line.className = "board-you-line";
    line.textContent = `You are #${you.rank} of ${you.of}, with ${you.score} points.`;
    this.you.append(line);
    const inTop = top.some((entry) => entry.player_id === me);
    if (!inTop && you.neighbours?.length) {
      const list = document.createElement("ol");
      list.className = "board-rows board-neighbours";
      list.append(...you.neighbours.map((entry) => this.row(entry, undefined, me)));
      this.you.append(list);
    }
  }
}
