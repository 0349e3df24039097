// Shows the connection state: a small pill, and a banner while the game is unreachable.

const WORDS = {
  connecting: "connecting…",
  online: "online",
  reconnecting: "reconnecting…",
  offline: "offline",
};

export function showConnection(socket) {
  const pill = document.getElementById("connection");
  const banner = document.getElementById("offline");
  socket.on("status", ({ status }) => {
    pill.dataset.status = status;
    pill.textContent = WORDS[status] ?? status;
    banner.hidden = status !== "reconnecting";
  });
}
