// uPlot charts: the live traces (scrolling) and the lap-versus-lap overlay on lap distance.
/* global uPlot */

const AXIS = { stroke: "#9aa7b8", grid: { stroke: "#1f2732", width: 1 }, ticks: { stroke: "#1f2732", width: 1 } };
const COLORS = {
  speed: "#4fc3f7",
  gear: "#b39ddb",
  throttle: "#66bb6a",
  brake: "#ef5350",
  steering: "#ffca28",
  a: "#4fc3f7",
  b: "#ff8a65",
  delta: "#e0e0e0",
};

/**
 * Time-axis labels with as many decimals as the tick spacing needs (0.5 s apart: one, 0.25 s: two), so two
 * ticks never read the same however far the chart is zoomed in.
 */
export function secondsLabels(_u, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  let decimals = 0;
  while (decimals < 3 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals += 1;
  return ticks.map((v) => `${v.toFixed(decimals)}s`);
}

function percent(_u, ticks) {
  return ticks.map((v) => `${Math.round(v * 100)}%`);
}

function degrees(_u, ticks) {
  return ticks.map((v) => `${Math.round((v * 180) / Math.PI)}°`);
}

/** Keep a chart as wide as its container. */
function followWidth(chart, container, height) {
  const observer = new ResizeObserver(() => {
    const width = Math.max(200, Math.floor(container.clientWidth));
    if (width !== chart.width) chart.setSize({ width, height });
  });
  observer.observe(container);
  return observer;
}

function emptyData(series) {
  return Array.from({ length: series + 1 }, () => []);
}

/** The two scrolling live charts: speed + gear, and pedals + steering. `update(views)` redraws both. */
export class LiveCharts {
  constructor(container) {
    const width = Math.max(200, container.clientWidth);
    this.container = container;
    const common = (height) => ({
      width,
      height,
      legend: { show: false },
      cursor: { show: false },
      pxAlign: 0,
      scales: { x: { time: false } },
    });
    this.speedChart = new uPlot(
      {
        ...common(170),
        series: [
          { label: "t (s)" },
          { label: "speed km/h", stroke: COLORS.speed, width: 2, scale: "speed" },
          { label: "gear", stroke: COLORS.gear, width: 1.5, scale: "gear", paths: uPlot.paths.stepped({ align: 1 }) },
        ],
        scales: { x: { time: false }, speed: { range: (_u, _min, max) => [0, Math.max(100, Math.ceil(max / 50) * 50)] }, gear: { range: [0, 8] } },
        axes: [
          { ...AXIS, values: secondsLabels },
          { ...AXIS, scale: "speed", size: 50 },
          { ...AXIS, scale: "gear", side: 1, size: 28, grid: { show: false }, incrs: [1] },
        ],
      },
      emptyData(2),
      container.querySelector("[data-chart=speed]"),
    );
    this.pedalChart = new uPlot(
      {
        ...common(150),
        series: [
          { label: "t (s)" },
          { label: "throttle", stroke: COLORS.throttle, width: 2, scale: "pedal" },
          { label: "brake", stroke: COLORS.brake, width: 2, scale: "pedal" },
          { label: "steering", stroke: COLORS.steering, width: 1.5, scale: "steer" },
        ],
        scales: {
          x: { time: false },
          pedal: { range: [0, 1] },
          steer: { range: (_u, min, max) => { const m = Math.max(0.5, Math.abs(min), Math.abs(max)); return [-m, m]; } },
        },
        axes: [
          { ...AXIS, values: secondsLabels },
          { ...AXIS, scale: "pedal", size: 50, values: percent, incrs: [0.25, 0.5] },
          { ...AXIS, scale: "steer", side: 1, size: 40, grid: { show: false }, values: degrees },
        ],
      },
      emptyData(3),
      container.querySelector("[data-chart=pedals]"),
    );
    this.observers = [
      followWidth(this.speedChart, container.querySelector("[data-chart=speed]"), 170),
      followWidth(this.pedalChart, container.querySelector("[data-chart=pedals]"), 150),
    ];
    this.points = 0;
  }

  /** Draw the newest samples: `views` are same-length arrays t, speed, gear, throttle, brake, steering. */
  update([t, speed, gear, throttle, brake, steering]) {
    this.points = t.length;
    this.speedChart.setData([t, speed, gear]);
    this.pedalChart.setData([t, throttle, brake, steering]);
  }

  destroy() {
    this.observers.forEach((o) => o.disconnect());
    this.speedChart.destroy();
    this.pedalChart.destroy();
  }
}

/** A uPlot plugin that shades each corner's span and names it at its apex (distances in metres). */
function cornersPlugin(corners) {
  return {
    hooks: {
      drawClear: [
        (u) => {
          const { ctx } = u;
          const top = u.bbox.top;
          const height = u.bbox.height;
          ctx.save();
          for (const corner of corners) {
            const from = u.valToPos(corner.from, "x", true);
            const to = u.valToPos(corner.to, "x", true);
            ctx.fillStyle = "rgba(255,255,255,0.05)";
            ctx.fillRect(from, top, Math.max(1, to - from), height);
          }
          ctx.restore();
        },
      ],
      draw: [
        (u) => {
          const { ctx } = u;
          ctx.save();
          ctx.fillStyle = "#9aa7b8";
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          ctx.textAlign = "center";
          for (const corner of corners) {
            const apex = u.valToPos(corner.apex, "x", true);
            ctx.fillText(corner.name, apex, u.bbox.top + 12 * devicePixelRatio);
          }
          ctx.restore();
        },
      ],
    },
  };
}

/** Four charts on lap distance, cursors in sync: speed, throttle, brake (lap A vs lap B) and the time delta. */
export class OverlayCharts {
  constructor(container, comparison, corners, labels) {
    this.container = container;
    container.replaceChildren();
    const width = Math.max(240, container.clientWidth);
    const sync = uPlot.sync(`overlay-${Math.random()}`);
    const x = comparison.distance;
    const panels = [
      { key: "speed", label: "speed km/h", height: 170 },
      { key: "throttle", label: "throttle", height: 110, values: percent, range: [0, 1] },
      { key: "brake", label: "brake", height: 110, values: percent, range: [0, 1] },
      {
        key: "delta",
        label: `delta (s, ${labels.a} − ${labels.b})`,
        height: 130,
        values: (_u, ticks) => ticks.map((v) => `${v > 0 ? "+" : ""}${v.toFixed(2)}s`),
        range: (_u, min, max) => {
          const m = Math.max(0.05, Math.abs(min), Math.abs(max)) * 1.1;
          return [-m, m];
        },
      },
    ];
    this.charts = panels.map((panel) => {
      const element = document.createElement("div");
      element.className = "overlay-panel";
      element.dataset.overlay = panel.key;
      container.append(element);
      const series =
        panel.key === "delta"
          ? [{ label: "distance (m)" }, { label: "delta s", stroke: COLORS.delta, width: 2, fill: "rgba(224,224,224,0.06)" }]
          : [
              { label: "distance (m)" },
              { label: `${labels.a} ${panel.label}`, stroke: COLORS.a, width: 1.8 },
              { label: `${labels.b} ${panel.label}`, stroke: COLORS.b, width: 1.8 },
            ];
      const data =
        panel.key === "delta"
          ? [x, comparison.delta]
          : [x, comparison.a.channels[panel.key] || [], comparison.b.channels[panel.key] || []];
      const chart = new uPlot(
        {
          width,
          height: panel.height,
          series,
          cursor: { sync: { key: sync.key }, drag: { x: true, y: false } },
          legend: { live: true },
          scales: { x: { time: false }, y: panel.range ? { range: panel.range } : {} },
          axes: [
            { ...AXIS, values: (_u, ticks) => ticks.map((v) => `${Math.round(v)} m`) },
            { ...AXIS, size: 56, values: panel.values },
          ],
          plugins: [cornersPlugin(corners)],
        },
        data,
        element,
      );
      sync.sub(chart);
      return chart;
    });
    this.observers = this.charts.map((chart, i) => followWidth(chart, container, panels[i].height));
  }

  destroy() {
    this.observers.forEach((o) => o.disconnect());
    this.charts.forEach((chart) => chart.destroy());
    this.container.replaceChildren();
  }
}

/** Corners guessed from lap speed minima when the track has none stored (labelled T1, T2, …). */
export function cornersFromSpeed(distance, speed) {
  const corners = [];
  const n = speed.length;
  if (n < 20) return corners;
  const window = Math.max(3, Math.round(n / 60));
  for (let i = window; i < n - window; i += 1) {
    let isMin = true;
    for (let k = i - window; k <= i + window && isMin; k += 1) if (speed[k] < speed[i]) isMin = false;
    if (!isMin) continue;
    let before = speed[i];
    let after = speed[i];
    for (let k = Math.max(0, i - window * 4); k < i; k += 1) before = Math.max(before, speed[k]);
    for (let k = i + 1; k < Math.min(n, i + window * 4); k += 1) after = Math.max(after, speed[k]);
    if (Math.min(before, after) - speed[i] < 15) continue; // a shift or a bump, not a corner
    if (corners.length && distance[i] - corners[corners.length - 1].apex < distance[n - 1] / 40) continue;
    corners.push({ name: `T${corners.length + 1}`, apex: distance[i], from: distance[Math.max(0, i - window)], to: distance[Math.min(n - 1, i + window)] });
  }
  return corners;
}
