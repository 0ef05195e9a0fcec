import { type ClipTensor, type Frame, gridFrame, tensorToClips } from '../../io/frame.js';

/** Rows of clips (one clip per row, frames left to right), scaled up `scale`× for viewing. */
export function clipGrid(clips: ClipTensor, rows: number, scale = 2): Frame {
  const frames = tensorToClips(clips.data.subarray(0, rows * (clips.data.length / clips.shape[0]!)), [
    rows,
    ...clips.shape.slice(1),
  ]);
  const g = gridFrame(frames.flat(), { columns: clips.shape[2]!, gap: 1 });
  return upscale(g, scale);
}

function upscale(f: Frame, s: number): Frame {
  const w = f.width * s,
    h = f.height * s,
    data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      data.set(
        f.data.subarray(
          (Math.floor(y / s) * f.width + Math.floor(x / s)) * 3,
          (Math.floor(y / s) * f.width + Math.floor(x / s)) * 3 + 3,
        ),
        (y * w + x) * 3,
      );
  return { width: w, height: h, data };
}

/** Panels side by side with a white gap. */
export function sideBySide(panels: Frame[], gap = 8): Frame {
  const h = Math.max(...panels.map((p) => p.height));
  const w = panels.reduce((s, p) => s + p.width, 0) + gap * (panels.length - 1);
  const data = new Uint8Array(w * h * 3).fill(255);
  let x0 = 0;
  for (const p of panels) {
    for (let y = 0; y < p.height; y++)
      data.set(p.data.subarray(y * p.width * 3, (y + 1) * p.width * 3), (y * w + x0) * 3);
    x0 += p.width + gap;
  }
  return { width: w, height: h, data };
}
