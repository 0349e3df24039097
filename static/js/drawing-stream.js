// Protocol v2 (docs/protocol.md, "Drawing incrementally"): the server holds this connection's
// drawing, and we send only what changed since the last message — a new stroke, the points added
// to the last one, an undo, a clear — each numbered by `seq`. A guess then costs the server only
// the new segments, whatever the drawing's length.
//
// The pad's strokes only ever grow at the end (points added to the last stroke, new strokes) or
// shrink from the end (undo, clear), so comparing them with what was sent (the same stroke
// arrays, and how many points of each) finds the change. Anything else, and every `resync` the
// server asks for, sends the whole drawing in one `drawing` message.

export class DrawingStream {
  constructor(socket) {
    this.socket = socket;
    this.seq = 0; // of the last message sent on this connection
    this.sent = []; // [{stroke, count}] the server holds; null: unknown, send it whole
    this.wholeSeq = 0; // seq of the last whole drawing sent: older resyncs are answered already
    this.onResync = null; // called when the server asked for the whole drawing again
    socket.on("joined", () => this.restart());
    socket.on("rejoined", () => this.restart());
    socket.on("resync", (message) => this.resynced(message));
  }

  // A new connection holds an empty drawing, and counts from 1.
  restart() {
    this.seq = 0;
    this.sent = [];
    this.wholeSeq = 0;
  }

  resynced(message) {
    if (typeof message.seq !== "number" || message.seq <= this.wholeSeq) return;
    this.sent = null;
    this.onResync?.();
  }

  // Send what changed in `strokes` since the last call; with `guessId`, the last message asks
  // for a guess of the result (if nothing changed, none is needed: returns false).
  sync(strokes, guessId = null) {
    const messages = this.changes(strokes);
    if (messages.length === 0) return false;
    if (guessId !== null && strokes.length > 0) {
      Object.assign(messages.at(-1), { guess: true, id: guessId });
    }
    for (const message of messages) {
      if (!this.socket.send({ ...message, seq: this.seq + 1 })) {
        this.sent = null; // not sent: offline, and the next connection starts afresh anyway
        return false;
      }
      this.seq += 1;
      if (message.type === "drawing") this.wholeSeq = this.seq;
    }
    this.sent = strokes.map((stroke) => ({ stroke, count: stroke.length }));
    return guessId !== null && strokes.length > 0;
  }

  // "This is a 7" about the drawing the server holds; if it is not in step (a reconnect, a lost
  // message), the same submission (same id) again with the whole drawing.
  async submit(strokes, label) {
    const drawing = { strokes: strokes.map(copy) }; // as it is now, should the pad change
    this.sync(strokes);
    const reply = await this.socket.request({ type: "submit", seq: this.seq, label });
    if (reply.type !== "resync") return reply;
    return this.socket.request({ type: "submit", id: reply.id, drawing, label });
  }

  changes(strokes) {
    const sent = this.sent;
    if (sent === null) return [whole(strokes)];
    let same = 0; // strokes still as sent (possibly grown, if the last sent)
    while (same < Math.min(sent.length, strokes.length) && sent[same].stroke === strokes[same]) {
      same += 1;
    }
    const removed = sent.length - same;
    if (strokes.length === 0) return removed ? [{ type: "clear" }] : [];
    const messages = [];
    if (removed > 0) {
      // Undo only takes whole strokes off the end: anything else is sent whole.
      if (same !== strokes.length || removed > 3) return [whole(strokes)];
      for (let i = 0; i < removed; i += 1) messages.push({ type: "undo" });
      return messages;
    }
    const last = sent.at(-1);
    if (last && strokes[sent.length - 1].length > last.count) {
      messages.push({ type: "points", points: copy(last.stroke.slice(last.count)) });
    }
    for (const stroke of strokes.slice(sent.length)) {
      messages.push({ type: "stroke_start", points: copy(stroke) });
    }
    return messages;
  }
}

function whole(strokes) {
  return { type: "drawing", strokes: strokes.map(copy) };
}

function copy(points) {
  return points.map(([x, y]) => [x, y]);
}
