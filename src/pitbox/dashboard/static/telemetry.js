// Live telemetry in the browser: bounded per-driver buffers, lap tracking and the delta to the best lap.

/** The channels the dashboard keeps from each live sample (canonical names, docs/telemetry.md). */
export const LIVE_CHANNELS = ["t", "speed", "throttle", "brake", "steering", "gear", "rpm", "lap", "lapDistPct", "lapDist", "lapTime", "px", "py"];

/**
 * A ring of columns of fixed capacity. Every value is written twice (at i and i + capacity), so the newest n
 * samples are always one contiguous subarray: charts get views, never copies, and memory never grows.
 */
export class SampleRing {
  constructor(capacity) {
    this.capacity = capacity;
    this.columns = Object.fromEntries(LIVE_CHANNELS.map((name) => [name, new Float64Array(capacity * 2).fill(NaN)]));
    this.count = 0; // samples ever pushed
  }

  push(sample) {
    const i = this.count % this.capacity;
    for (const name of LIVE_CHANNELS) {
      const value = sample[name];
      const column = this.columns[name];
      column[i] = column[i + this.capacity] = value === undefined || value === null ? NaN : value;
    }
    this.count += 1;
  }

  get size() {
    return Math.min(this.count, this.capacity);
  }

  /** Views of the newest `n` samples of the given channels, oldest first. */
  newest(names, n) {
    const size = Math.min(n, this.size);
    const end = ((this.count - 1) % this.capacity) + 1 + this.capacity;
    return names.map((name) => this.columns[name].subarray(end - size, end));
  }

  /** The index (0..size) in newest(size) of the first sample with t > limit. */
  countUpTo(limit) {
    const [t] = this.newest(["t"], this.size);
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] <= limit) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  last(name) {
    if (!this.count) return NaN;
    return this.columns[name][(this.count - 1) % this.capacity];
  }
}

/** The rows of a live telemetry message, whatever shape the sender used (data, samples or columns). */
export function rowsOf(message) {
  if (Array.isArray(message.samples)) return message.samples;
  if (message.data && typeof message.data === "object") return [message.data];
  if (message.columns && typeof message.columns === "object") {
    const names = Object.keys(message.columns);
    const length = message.columns.t ? message.columns.t.length : 0;
    const rows = new Array(length);
    for (let i = 0; i < length; i += 1) {
      const row = {};
      for (const name of names) row[name] = message.columns[name][i];
      rows[i] = row;
    }
    return rows;
  }
  return [];
}

/** Plane coordinates of a sample: x/y when the sim gives them, else lat/lon projected (metres, equirectangular). */
export function planePosition(row, origin) {
  if (Number.isFinite(row.x) && Number.isFinite(row.y)) return [row.x, row.y];
  if (Number.isFinite(row.lat) && Number.isFinite(row.lon)) {
    if (!origin.lat) {
      origin.lat = row.lat;
      origin.lon = row.lon;
    }
    const metresPerDegree = 111_320;
    return [
      (row.lon - origin.lon) * metresPerDegree * Math.cos((origin.lat * Math.PI) / 180),
      (row.lat - origin.lat) * metresPerDegree,
    ];
  }
  return [NaN, NaN];
}

/**
 * A best lap as a reference for the live delta: elapsed time at each lap fraction. `delta(pct, elapsed)` is
 * positive when the current lap is slower than the reference at the same place.
 */
export class ReferenceLap {
  constructor(lap, pct, t) {
    this.lap = lap;
    this.pct = [];
    this.elapsed = [];
    let previous = -1;
    for (let i = 0; i < pct.length; i += 1) {
      const p = pct[i];
      // Keep the strictly increasing part; the samples either side of the line wrap around.
      if (Number.isFinite(p) && p > previous && !(i < 5 && p > 0.5)) {
        this.pct.push(p);
        this.elapsed.push(t[i] - lap.tStart);
        previous = p;
      }
    }
  }

  get usable() {
    return this.pct.length > 10;
  }

  elapsedAt(p) {
    const xs = this.pct;
    let lo = 0;
    let hi = xs.length - 1;
    if (p <= xs[0]) return this.elapsed[0] * (p / xs[0] || 0);
    if (p >= xs[hi]) return this.elapsed[hi];
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= p) lo = mid;
      else hi = mid;
    }
    const f = (p - xs[lo]) / (xs[hi] - xs[lo]);
    return this.elapsed[lo] + f * (this.elapsed[hi] - this.elapsed[lo]);
  }

  delta(p, elapsed) {
    return elapsed - this.elapsedAt(p);
  }
}

const RING_SECONDS = 40;
const RATE_HZ = 60;

/** Everything the page knows about one driver's live state; filled by socket messages, read by the renderer. */
export class DriverLive {
  constructor(driver) {
    this.driver = driver;
    this.ring = new SampleRing(RING_SECONDS * RATE_HZ);
    this.origin = {};
    this.sessionId = null;
    this.lapNumber = null;
    this.lapStartT = null;
    this.lastLapTime = null;
    this.reference = null; // ReferenceLap of the session's best lap
    this.receivedAt = 0; // wall clock (ms) of the last message
    this.simRate = 1; // session seconds per wall second, estimated
    this.playT = NaN; // the session time the charts show (smooth, slightly behind the newest sample)
    this.changed = true;
  }

  /** Take one telemetry message; returns what happened that the page should act on. */
  ingest(message, now) {
    const rows = rowsOf(message);
    const events = { newSession: false, lapChanged: false };
    if (message.sessionId && message.sessionId !== this.sessionId) {
      this.sessionId = message.sessionId;
      this.lapNumber = null;
      this.lapStartT = null;
      this.reference = null;
      events.newSession = true;
    }
    const before = this.ring.last("t");
    for (const row of rows) {
      if (!Number.isFinite(row.t)) continue;
      if (this.ring.count && row.t <= this.ring.last("t")) continue; // a retried or older batch
      const [px, py] = planePosition(row, this.origin);
      this.ring.push({ ...pick(row), px, py });
      if (Number.isFinite(row.lap) && row.lap !== this.lapNumber) {
        if (this.lapNumber !== null) {
          events.lapChanged = true;
          this.lapStartT = row.t;
        }
        this.lapNumber = row.lap;
      }
    }
    const after = this.ring.last("t");
    if (this.receivedAt && Number.isFinite(before) && after > before) {
      const wall = (now - this.receivedAt) / 1000;
      if (wall > 0.01) this.simRate = Math.min(100, Math.max(0.1, 0.7 * this.simRate + 0.3 * ((after - before) / wall)));
    }
    this.receivedAt = now;
    this.changed = true;
    return events;
  }

  /** Advance the play clock by a frame: it runs at the sim's rate and never passes the newest sample. */
  advance(dtSeconds) {
    const newest = this.ring.last("t");
    if (!Number.isFinite(newest)) return;
    const lagLimit = Math.max(2, this.simRate * 2.5);
    if (!Number.isFinite(this.playT) || newest - this.playT > lagLimit) this.playT = newest - Math.min(1, lagLimit / 2);
    this.playT = Math.min(newest, this.playT + dtSeconds * this.simRate);
  }

  /** Current values at the play clock: speed, gear, lap timer, delta to best, … */
  snapshot() {
    const n = this.ring.countUpTo(Number.isFinite(this.playT) ? this.playT : Infinity);
    if (!n) return null;
    const cols = this.ring.newest(["t", "speed", "throttle", "brake", "steering", "gear", "rpm", "lap", "lapDistPct", "lapTime", "px", "py"], this.ring.size);
    const i = n - 1;
    const value = (k) => cols[k][i];
    const t = value(0);
    let lapElapsed = Number.isFinite(value(9)) ? value(9) : this.lapStartT !== null ? t - this.lapStartT : NaN;
    if (lapElapsed < 0) lapElapsed = NaN;
    const pct = value(8);
    const delta =
      this.reference && this.reference.usable && Number.isFinite(lapElapsed) && Number.isFinite(pct)
        ? this.reference.delta(pct, lapElapsed)
        : NaN;
    return {
      t,
      speed: value(1),
      throttle: value(2),
      brake: value(3),
      steering: value(4),
      gear: value(5),
      rpm: value(6),
      lap: value(7),
      pct,
      lapElapsed,
      delta,
      px: value(10),
      py: value(11),
      index: n,
    };
  }
}

function pick(row) {
  return {
    t: row.t,
    speed: row.speed,
    throttle: row.throttle,
    brake: row.brake,
    steering: row.steering,
    gear: row.gear,
    rpm: row.rpm,
    lap: row.lap,
    lapDistPct: row.lapDistPct,
    lapDist: row.lapDist,
    lapTime: row.lapTime,
  };
}

/** "1:23.456" for seconds, "—" when unknown. */
export function lapTimeText(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  const minutes = Math.floor(seconds / 60);
  const rest = seconds - minutes * 60;
  return minutes ? `${minutes}:${rest.toFixed(3).padStart(6, "0")}` : rest.toFixed(3);
}

/** A session's track as people say it: "Red Bull Ring (Grand Prix)", "" when the session names none. */
export function trackText(session) {
  if (!session.trackName) return "";
  return session.trackConfig ? `${session.trackName} (${session.trackConfig})` : session.trackName;
}

export function deltaText(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  return `${seconds >= 0 ? "+" : "−"}${Math.abs(seconds).toFixed(3)}`;
}
