// The spectator page: rounds, boards, hall of fame and chart, without joining the game.

import { placeBlocks } from "./blocks.js";
import { showConnection } from "./connection.js";
import { LeaderboardView } from "./leaderboard.js";
import { followRound } from "./round.js";
import { GameSocket } from "./socket.js";
import { showError } from "./toast.js";

placeBlocks(); // first: the views below look for the shared markup
const socket = new GameSocket({ spectator: true });
showConnection(socket);
followRound(socket);
new LeaderboardView(socket, document.getElementById("leaderboard"));
socket.on("refused", showError);
socket.on("error", showError);
socket.connect();
