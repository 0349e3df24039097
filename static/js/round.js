// Everything that follows the current round: the banner, the hall of fame and the chart. The
// server pushes the round when it moves and when its counts move, so nothing here polls.

import { RoundBanner } from "./banner.js";
import { loadChart } from "./chart.js";
import { loadHallOfFame } from "./halloffame.js";

const CHART_LAG_MS = 5000;

export function followRound(socket) {
  const banner = new RoundBanner(document.getElementById("banner"));
  const fame = document.getElementById("fame");
  const history = document.getElementById("history");

  let chartLater = null;
  const chartNow = () => {
    clearTimeout(chartLater);
    chartLater = null;
    loadChart(history);
  };
  const show = (round, { resync = false } = {}) => {
    const before = banner.round;
    banner.show(round);
    const newRound = before?.id !== round?.id;
    const newFools = before?.fools !== round?.fools;
    if (resync || newRound || newFools) loadHallOfFame(fame, round?.number);
    // The chart's rates follow the fools at once; attempts alone move them by a hair, so those
    // reload it at most every CHART_LAG_MS (every page fetching on every attempt would weigh
    // on a busy server).
    if (resync || newRound || newFools) chartNow();
    else if (before?.attempts !== round?.attempts && !chartLater) {
      chartLater = setTimeout(chartNow, CHART_LAG_MS);
    }
  };
  socket.on("joined", (welcome) => show(welcome.round, { resync: true }));
  socket.on("rejoined", (welcome) => show(welcome.round, { resync: true }));
  // A change to an older round (say, round 2 finishing while round 3 is open) is not news here.
  socket.on("round", ({ round }) => {
    if (!banner.round || !round || round.number >= banner.round.number) show(round);
  });
}
