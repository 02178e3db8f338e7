// The track map: the outline (from the reference lap, else the live path) drawn once, the car's dot each frame.

const MAX_OUTLINE_POINTS = 1500;

export class TrackMap {
  constructor(canvas) {
    this.canvas = canvas;
    this.outline = null; // {xs, ys}
    this.outlineImage = null; // offscreen canvas, redrawn only when the outline or the size changes
    this.transform = null;
    this.size = [0, 0];
  }

  /** Use these plane points as the track outline (decimated to a bounded number of points). */
  setOutline(xs, ys) {
    const finite = [];
    for (let i = 0; i < xs.length; i += 1) if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) finite.push(i);
    if (finite.length < 10) return;
    const step = Math.max(1, Math.ceil(finite.length / MAX_OUTLINE_POINTS));
    const keep = finite.filter((_, k) => k % step === 0);
    this.outline = { xs: keep.map((i) => xs[i]), ys: keep.map((i) => ys[i]) };
    this.outlineImage = null;
  }

  get hasOutline() {
    return this.outline !== null;
  }

  clear() {
    this.outline = null;
    this.outlineImage = null;
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
