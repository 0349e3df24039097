// The spectator page: rounds, boards, hall of fame and chart, without joining the game.

import { showConnection } from "./connection.js";
import { LeaderboardView } from "./leaderboard.js";
import { followRound } from "./round.js";
import { GameSocket } from "./socket.js";
import { showError } from "./toast.js";

const socket = new GameSocket({ spectator: true });
showConnection(socket);
followRound(socket);
new LeaderboardView(socket, document.getElementById("leaderboard"));
socket.on("refused", showError);
socket.on("error", showError);
socket.connect();
