// The admin console: log in with the admin token, then every panel loads and keeps itself fresh.

import { ChallengesPanel } from "./challenges.js";
import { adminApi, adminToken } from "./client.js";
import { ExportPanel } from "./export.js";
import { ModelsPanel } from "./models.js";
import { PlayersPanel } from "./players.js";
import { ReviewPanel } from "./review.js";
import { RoundsPanel } from "./rounds.js";
import { TrainerPanel } from "./trainer.js";

const $ = (id) => document.getElementById(id);

const models = new ModelsPanel($("models"));
const trainer = new TrainerPanel($("trainer"), {
  onFinished: () => {
    rounds.load();
    challenges.load();
    models.load();
  },
});
const rounds = new RoundsPanel($("rounds"), { onLaunched: () => trainer.poll() });
const challenges = new ChallengesPanel($("challenges"));
const review = new ReviewPanel($("review"));
const players = new PlayersPanel($("players"));
new ExportPanel($("export"));

function showLogin(message = "") {
  trainer.stop();
  $("login").hidden = false;
  $("console").hidden = true;
  $("logout").hidden = true;
  $("login-error").textContent = message;
  $("login-token").focus();
}

function showConsole() {
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  rounds.load();
  challenges.load();
  trainer.poll();
  models.load();
  review.load();
  players.load();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  adminToken.set($("login-token").value.trim());
  try {
    await adminApi("/api/admin/rounds"); // proves the token before showing anything
    $("login-token").value = "";
    showConsole();
  } catch (error) {
    adminToken.clear();
    showLogin(error.message);
  }
});

$("logout").addEventListener("click", () => {
  adminToken.clear();
  location.reload();
});

window.addEventListener("admin-logout", (event) => showLogin(event.detail.message));

if (adminToken.get()) showConsole();
else showLogin();
