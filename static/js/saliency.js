// "Through the model's eyes": the 28×28 image the model saw and a heat map of where it looked
// (the `explain` message, docs/protocol.md). The player asks for the drawing on the pad; after a
// submission the submitted drawing is shown with the model's guess until the next submission.

const SIZE = 28;

export class SeeView {
  constructor(socket, root, pad) {
    this.socket = socket;
    this.root = root;
    this.pad = pad;
    this.ask = root.querySelector("#see-ask");
    this.body = root.querySelector(".see-body");
    this.input = root.querySelector("#see-input");
    this.heat = root.querySelector("#see-heat");
    this.caption = root.querySelector("#see-caption");
    this.wanted = null; // the newest drawing to explain, with its caption
    this.busy = false; // one request at a time: the server answers only the newest anyway

    this.ask.addEventListener("click", () => {
      if (this.pad.isEmpty) return;
      this.explain(this.pad.drawing(), (m) => `The model reads a ${m.label} (${percent(m)}).`);
    });
    pad.addEventListener("change", () => (this.ask.disabled = pad.isEmpty));
    this.ask.disabled = pad.isEmpty;
  }

  // After a submission: keep the submitted drawing on screen, as the model saw it.
  submitted(drawing, reply) {
    const said = reply.label;
    this.explain(drawing, (m) => `Your ${said}: the model saw a ${m.label} (${percent(m)}).`);
  }

  async explain(drawing, describe) {
    this.wanted = { drawing, describe };
    if (this.busy) return;
    this.busy = true;
    this.root.dataset.state = "asking";
    while (this.wanted) {
      const { drawing: next, describe: words } = this.wanted;
      this.wanted = null;
      try {
        const reply = await this.socket.request({ type: "explain", drawing: next });
        if (!this.wanted) this.show(reply, words(reply));
      } catch (error) {
        if (!this.wanted) this.caption.textContent = error.message;
      }
    }
    this.busy = false;
    this.root.dataset.state = "idle";
  }

  show(reply, caption) {
    const image = bytes(reply.input);
    const heat = bytes(reply.heatmap);
    paint(this.input, (i) => [image[i], image[i], image[i]]);
    paint(this.heat, (i) => hot(image[i], heat[i]));
    this.body.hidden = false;
    this.root.dataset.label = String(reply.label);
    this.caption.textContent = `${caption} Hot spots: covering the ink there changes its mind most.`;
  }
}

function percent(message) {
  return `${Math.round(message.probs[message.label] * 100)}%`;
}

function bytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// The ink dimmed to grey, under a heat colour from dark red (a little) to yellow (most).
function hot(ink, heat) {
  const h = heat / 255;
  const grey = ink * 0.35;
  return [grey + (255 - grey) * h, grey + (64 + 191 * h * h - grey) * h, grey * (1 - h)];
}

function paint(canvas, colour) {
  const context = canvas.getContext("2d");
  const picture = context.createImageData(SIZE, SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const [r, g, b] = colour(i);
    picture.data.set([r, g, b, 255], i * 4);
  }
  context.putImageData(picture, 0, 0);
}
