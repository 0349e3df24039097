// Show a drawing from the server — strokes replayed as the drawer drew them, or a PNG.

import { PAD_SIZE, paintStrokes } from "./canvas.js";

const REPLAY_MS = 900;
const SPAN = PAD_SIZE * 0.65;
const PEN = SPAN * 0.16; // server/serving/preprocess.py: STROKE_WIDTH × the drawing's span

// Returns a function that cancels a running replay.
export function showDrawing(canvas, drawing, { animate = true } = {}) {
  const ctx = canvas.getContext("2d");
  if (drawing.png) {
    const image = new Image();
    image.onload = () => {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingEnabled = image.width >= canvas.width / 4;
      ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    };
    image.src = `data:image/png;base64,${drawing.png}`;
    return () => {};
  }
  const strokes = fitToPad(drawing.strokes ?? []);
  const scale = canvas.width / PAD_SIZE;
  const total = strokes.reduce((sum, s) => sum + s.length, 0);
  if (!animate || total === 0 || matchMedia("(prefers-reduced-motion: reduce)").matches) {
    paintStrokes(ctx, strokes, scale, PEN);
    return () => {};
  }
  let frame = 0;
  const start = performance.now();
  const step = (now) => {
    const shown = Math.ceil((total * (now - start)) / REPLAY_MS);
    paintStrokes(ctx, strokes, scale, PEN, shown);
    if (shown < total) frame = requestAnimationFrame(step);
  };
  frame = requestAnimationFrame(step);
  return () => cancelAnimationFrame(frame);
}

// Strokes may come from any canvas size: the ink is scaled to span SPAN pad pixels and drawn
// with the server's pen (0.16 × the span), so validators see what the model saw.
function fitToPad(strokes) {
  const points = strokes.flat();
  if (points.length === 0) return strokes;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const extent = Math.max(maxX - minX, maxY - minY);
  const k = extent > 0 ? SPAN / extent : 1;
  const dx = PAD_SIZE / 2 - ((minX + maxX) / 2) * k;
  const dy = PAD_SIZE / 2 - ((minY + maxY) / 2) * k;
  return strokes.map((s) => s.map(([x, y]) => [x * k + dx, y * k + dy]));
}
