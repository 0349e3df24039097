// The play page: join (or resume with the saved token), then draw, validate and watch the boards.

import { placeBlocks } from "./blocks.js";
import { ChallengesView } from "./challenges.js";
import { showConnection } from "./connection.js";
import { LeaderboardView } from "./leaderboard.js";
import { PlayView } from "./play.js";
import { followRound } from "./round.js";
import { SeeView } from "./saliency.js";
import { GameSocket, savedToken } from "./socket.js";
import { SessionSummary } from "./summary.js";
import { showError } from "./toast.js";
import { ValidateView } from "./validate.js";

placeBlocks(); // first: the views below look for the shared markup
const socket = new GameSocket({});
const play = new PlayView(socket, document.getElementById("draw"));
new ChallengesView(socket, document.getElementById("challenges"));
const see = new SeeView(socket, document.getElementById("see"), play.pad);
const summary = new SessionSummary(
  socket,
  document.getElementById("summary"),
  document.getElementById("end-session"),
);
play.onSubmitted = (drawing, reply) => {
  see.submitted(drawing, reply);
  summary.submitted(reply);
};
const validate = new ValidateView(socket, document.getElementById("validate"));
const views = { draw: play, validate };
let current = "draw";

showConnection(socket);
followRound(socket);
new LeaderboardView(socket, document.getElementById("leaderboard"), {
  playerId: () => socket.welcome?.player?.id ?? null,
});
setUpModes();
setUpJoin();

socket.on("joined", (welcome) => {
  document.getElementById("join").close();
  document.getElementById("player-name").textContent = welcome.player?.name ?? "";
});
socket.on("refused", (error) => {
  if (error.code === "banned") showError(error);
  else askForName(error.message);
});
socket.on("error", (message) => {
  if (!play.ownsError(message)) showError(message);
});

function setUpJoin() {
  const dialog = document.getElementById("join");
  // The game needs a name (or a saved token); Escape must not leave an empty page behind.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  document.getElementById("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    document.getElementById("join-error").textContent = "";
    socket.join = { name: document.getElementById("join-name").value.trim() };
    socket.connect();
  });
  if (savedToken()) socket.connect();
  else askForName("");
}

function askForName(message) {
  document.getElementById("join-error").textContent = message;
  const dialog = document.getElementById("join");
  if (!dialog.open) dialog.showModal();
  document.getElementById("join-name").focus();
}

function setUpModes() {
  const tabs = [...document.querySelectorAll(".modes [role=tab]")];
  const select = (name) => {
    current = name;
    for (const tab of tabs) {
      const on = tab.dataset.view === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(tab.dataset.view).hidden = !on;
    }
    if (name === "validate") validate.activate();
    else validate.deactivate();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab.dataset.view));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const next = tabs[(tabs.indexOf(tab) + 1) % tabs.length];
      select(next.dataset.view);
      next.focus();
    });
  }
  // Keys go to whichever view is showing, unless the player is typing somewhere.
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.target.closest?.("input, textarea, select, dialog[open]")) return;
    if (event.key.length > 1 && !["Enter", "Backspace"].includes(event.key)) return;
    if (event.ctrlKey !== (event.key === "z")) return;
    if (views[current].key(event)) event.preventDefault();
  });
}
