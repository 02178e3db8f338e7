// The track map: the outline (from the reference lap, else the live path) drawn once, the car's dot each frame,
// and each in-lap cue at the place it was said.

const MAX_OUTLINE_POINTS = 1500;
const MAX_CUE_MARKS = 6;

export class TrackMap {
  constructor(canvas) {
    this.canvas = canvas;
    this.outline = null; // {xs, ys}
    this.outlineImage = null; // offscreen canvas, redrawn only when the outline or the size changes
    this.transform = null;
    this.size = [0, 0];
    this.cueMarks = []; // {x, y, label}
  }

  /** Use these plane points as the track outline (decimated to a bounded number of points); `pcts`, the lap
   * fraction of each point when known, places cues on it. */
  setOutline(xs, ys, pcts = null) {
    const finite = [];
    for (let i = 0; i < xs.length; i += 1) if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) finite.push(i);
    if (finite.length < 10) return;
    const step = Math.max(1, Math.ceil(finite.length / MAX_OUTLINE_POINTS));
    const keep = finite.filter((_, k) => k % step === 0);
    this.outline = {
      xs: keep.map((i) => xs[i]),
      ys: keep.map((i) => ys[i]),
      pcts: pcts ? keep.map((i) => pcts[i]) : null,
    };
    this.outlineImage = null;
  }

  /** The outline point nearest a lap fraction, or null when the outline does not know its fractions. */
  placeOf(pct) {
    const pcts = this.outline && this.outline.pcts;
    if (!pcts || !Number.isFinite(pct)) return null;
    let best = -1;
    let bestGap = Infinity;
    for (let i = 0; i < pcts.length; i += 1) {
      if (!Number.isFinite(pcts[i])) continue;
      const gap = Math.min(Math.abs(pcts[i] - pct), 1 - Math.abs(pcts[i] - pct));
      if (gap < bestGap) {
        bestGap = gap;
        best = i;
      }
    }
    return best < 0 ? null : [this.outline.xs[best], this.outline.ys[best]];
  }

  /** Mark a cue where it was said: at its lap fraction on the outline, else at the car's place (x, y). */
  markCue(pct, label, x = NaN, y = NaN) {
    const place = this.placeOf(pct) || (Number.isFinite(x) && Number.isFinite(y) ? [x, y] : null);
    if (!place) return false;
    this.cueMarks.push({ x: place[0], y: place[1], label });
    while (this.cueMarks.length > MAX_CUE_MARKS) this.cueMarks.shift();
    return true;
  }

  get hasOutline() {
    return this.outline !== null;
  }

  clear() {
    this.outline = null;
    this.outlineImage = null;
    this.cueMarks = [];
  }

  fit() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (width !== this.size[0] || height !== this.size[1]) {
      this.size = [width, height];
      this.canvas.width = width;
      this.canvas.height = height;
      this.outlineImage = null;
    }
  }

  buildOutlineImage() {
    const [width, height] = this.size;
    const { xs, ys } = this.outline;
    const minX = Math.min(...xs);
    const maxX = Math.max(...xs);
    const minY = Math.min(...ys);
    const maxY = Math.max(...ys);
    const pad = 14 * (window.devicePixelRatio || 1);
    const scale = Math.min((width - 2 * pad) / (maxX - minX || 1), (height - 2 * pad) / (maxY - minY || 1));
    const offsetX = (width - (maxX - minX) * scale) / 2;
    const offsetY = (height - (maxY - minY) * scale) / 2;
    // North (y) up: canvas y grows downwards.
    this.transform = (x, y) => [offsetX + (x - minX) * scale, height - (offsetY + (y - minY) * scale)];
    const image = document.createElement("canvas");
    image.width = width;
    image.height = height;
    const ctx = image.getContext("2d");
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    for (const [color, lineWidth] of [["#2b3340", 9], ["#6b7788", 2]]) {
      ctx.strokeStyle = color;
      ctx.lineWidth = lineWidth * (window.devicePixelRatio || 1);
      ctx.beginPath();
      xs.forEach((x, i) => {
        const [cx, cy] = this.transform(x, ys[i]);
        if (i === 0) ctx.moveTo(cx, cy);
        else ctx.lineTo(cx, cy);
      });
      ctx.stroke();
    }
    const [sx, sy] = this.transform(xs[0], ys[0]);
    ctx.fillStyle = "#e8eef7";
    ctx.fillRect(sx - 2, sy - 6, 4, 12);
    this.outlineImage = image;
  }

  /** Draw the outline and the car at (x, y). */
  draw(x, y) {
    this.fit();
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, this.size[0], this.size[1]);
    if (!this.outline) {
      ctx.fillStyle = "#6b7788";
      ctx.font = `${12 * (window.devicePixelRatio || 1)}px system-ui, sans-serif`;
      ctx.fillText("track map appears after the first lap", 10, 20 * (window.devicePixelRatio || 1));
      return;
    }
    if (!this.outlineImage) this.buildOutlineImage();
    ctx.drawImage(this.outlineImage, 0, 0);
    const ratio = window.devicePixelRatio || 1;
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    for (const mark of this.cueMarks) {
      const [mx, my] = this.transform(mark.x, mark.y);
      const r = 5 * ratio;
      ctx.fillStyle = "#f2cc60";
      ctx.beginPath();
      ctx.moveTo(mx, my - r);
      ctx.lineTo(mx + r, my);
      ctx.lineTo(mx, my + r);
      ctx.lineTo(mx - r, my);
      ctx.closePath();
      ctx.fill();
      ctx.fillText(mark.label, mx + r + 2, my - r);
    }
    if (Number.isFinite(x) && Number.isFinite(y)) {
      const [cx, cy] = this.transform(x, y);
      const r = 6 * (window.devicePixelRatio || 1);
      ctx.fillStyle = "#ff4d3d";
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
  }
}
