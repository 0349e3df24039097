// The drawing pad: pointer input (mouse, touch, pen) into polylines in canvas pixels, as the
// protocol's `{"strokes": [[[x, y], …], …]}` wants, with undo and clear.

export const PAD_SIZE = 280; // logical pixels: 10× MNIST's 28, whatever the size on screen
// A digit drawn ~200 px tall with this pen looks like the server's rendering (pen = 0.16 × the
// drawing's size, MNIST-like), so what players see is close to what the model sees.
export const INK_WIDTH = 24;
const MAX_STROKES = 64; // the protocol's limits
const MAX_POINTS = 2000;
const MIN_STEP = 2; // skip points closer than this: same shape, far fewer points

export class DrawingPad extends EventTarget {
  constructor(canvas) {
    super();
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.strokes = [];
    this.activePointer = null;
    this.resize();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  get pointCount() {
    return this.strokes.reduce((sum, stroke) => sum + stroke.length, 0);
  }

  get isEmpty() {
    return this.strokes.length === 0;
  }

  drawing() {
    return { strokes: this.strokes.map((stroke) => stroke.map(([x, y]) => [x, y])) };
  }

  undo() {
    this.strokes.pop();
    this.redraw();
    this.changed("undo");
  }

  clear() {
    this.strokes = [];
    this.redraw();
    this.changed("clear");
  }

  down(event) {
    if (this.activePointer !== null || event.button > 0) return; // one pen at a time: no palms
    if (this.strokes.length >= MAX_STROKES || this.pointCount >= MAX_POINTS) {
      this.dispatchEvent(new CustomEvent("full"));
      return;
    }
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.activePointer = event.pointerId;
    this.strokes.push([this.point(event)]);
    this.redraw();
    this.changed("draw");
  }

  move(event) {
    if (event.pointerId !== this.activePointer) return;
    const stroke = this.strokes.at(-1);
    const samples = event.getCoalescedEvents?.() ?? [event];
    let added = false;
    for (const sample of samples.length ? samples : [event]) {
      if (this.pointCount >= MAX_POINTS) break;
      const p = this.point(sample);
      const last = stroke.at(-1);
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) < MIN_STEP) continue;
      stroke.push(p);
      added = true;
    }
    if (added) {
      this.redraw();
      this.changed("draw");
    }
  }

  up(event) {
    if (event.pointerId !== this.activePointer) return;
    this.activePointer = null;
    this.changed("stroke-end");
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * PAD_SIZE) / rect.width;
    const y = ((event.clientY - rect.top) * PAD_SIZE) / rect.height;
    const clamp = (v) => Math.round(Math.min(PAD_SIZE, Math.max(0, v)) * 10) / 10;
    return [clamp(x), clamp(y)];
  }

  // Keep the backing store at device resolution so strokes stay crisp on phones.
  resize() {
    const scale = (this.canvas.clientWidth * (window.devicePixelRatio || 1)) / PAD_SIZE;
    const size = Math.max(PAD_SIZE, Math.round(PAD_SIZE * scale));
    if (this.canvas.width !== size) {
      this.canvas.width = size;
      this.canvas.height = size;
    }
    this.redraw();
  }

  redraw() {
    paintStrokes(this.ctx, this.strokes, this.canvas.width / PAD_SIZE);
  }

  changed(reason) {
    this.dispatchEvent(new CustomEvent("change", { detail: { reason } }));
  }
}

// Paint polylines given in pad pixels onto a context `scale` times larger; `limit` points draws
// only the first part (the replay animation uses it).
export function paintStrokes(ctx, strokes, scale, lineWidth = INK_WIDTH, limit = Infinity) {
  const { width, height } = ctx.canvas;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = lineWidth * scale;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  let budget = limit;
  for (const stroke of strokes) {
    if (budget <= 0) break;
    const points = stroke.slice(0, budget);
    budget -= points.length;
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0] * scale, points[0][1] * scale, (lineWidth * scale) / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(points[0][0] * scale, points[0][1] * scale);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x * scale, y * scale);
    ctx.stroke();
  }
}
