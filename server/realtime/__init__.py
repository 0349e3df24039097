"""Real-time transport beneath the game: the websocket protocol (parsing and replies), the hub of
connections and broadcasts, per-player limits, and pub/sub between server processes."""
