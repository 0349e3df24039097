// Everything that follows the current round: the banner, the hall of fame and the chart.

import { api } from "./api.js";
import { RoundBanner } from "./banner.js";
import { loadChart } from "./chart.js";
import { loadHallOfFame } from "./halloffame.js";

// Fools and attempts change with every submission; the socket pushes only round changes.
const REFRESH_MS = 10000;

export function followRound(socket) {
  const banner = new RoundBanner(document.getElementById("banner"));
  const fame = document.getElementById("fame");
  const history = document.getElementById("history");

  const show = (round) => {
    const newRound = banner.round?.id !== round?.id;
    banner.show(round);
    if (newRound) loadChart(history);
    loadHallOfFame(fame, round?.number);
  };
  socket.on("joined", (welcome) => show(welcome.round));
  socket.on("rejoined", (welcome) => show(welcome.round));
  // A change to an older round (say, round 2 finishing while round 3 is open) is not news here.
  socket.on("round", ({ round }) => {
    if (!banner.round || !round || round.number >= banner.round.number) show(round);
  });
  setInterval(async () => {
    if (socket.status !== "online") return;
    try {
      show(await api("/api/round"));
    } catch {
      // the socket's status already tells the player when the server is unreachable
    }
  }, REFRESH_MS);
}
