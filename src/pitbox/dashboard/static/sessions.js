// Sessions of a driver, a session's lap table (sectors, best marked), lap-versus-lap overlay and CSV export.

import { OverlayCharts, cornersFromSpeed } from "./charts.js";
import { el } from "./dom.js";
import { deltaText, lapTimeText, trackText } from "./telemetry.js";

const $ = (id) => document.getElementById(id);
const OVERLAY_CHANNELS = ["speed", "throttle", "brake"];
const OVERLAY_POINTS = 800;

/**
 * Fill `table` with one row per lap: time, sector times (the fastest of each column marked), delta to the best
 * lap. With `openable`, clicking a row dispatches `lap-open` ({sessionId, lap}) on the table.
 */
export function renderLapTable(table, laps, bestLap, { sessionId, openable = false, selected = null } = {}) {
  const sectorCount = Math.max(0, ...laps.map((lap) => lap.sectors.length));
  const bestSectors = Array.from({ length: sectorCount }, (_, k) =>
    Math.min(...laps.filter((lap) => lap.valid && Number.isFinite(lap.sectors[k])).map((lap) => lap.sectors[k])),
  );
  const head = el(
    "thead",
    {},
    el("tr", {}, el("th", {}, "Lap"), el("th", {}, "Time"), Array.from({ length: sectorCount }, (_, k) => el("th", {}, `S${k + 1}`)), el("th", {}, "Δ best"), el("th", {}, "")),
  );
  const body = el("tbody");
  for (const lap of laps) {
    const isBest = bestLap && lap.lap === bestLap.lap;
    const row = el(
      "tr",
      {
        class: [isBest ? "best" : "", lap.valid ? "" : "invalid", selected === lap.lap ? "selected" : "", openable ? "openable" : ""].join(" ").trim(),
        "data-lap": String(lap.lap),
        title: lap.valid ? (openable ? "Open the overlay of this lap against the best" : "") : `invalid: ${lap.invalidReasons.join(", ")}`,
      },
      el("td", {}, isBest ? el("span", { class: "star", title: "best lap" }, "★ ") : null, String(lap.lap)),
      el("td", { class: "mono" }, lapTimeText(lap.lapTime)),
      Array.from({ length: sectorCount }, (_, k) =>
        el("td", { class: `mono ${lap.valid && lap.sectors[k] === bestSectors[k] ? "best-sector" : ""}` }, lapTimeText(lap.sectors[k])),
      ),
      el("td", { class: "mono" }, bestLap && !isBest ? deltaText(lap.lapTime - bestLap.lapTime) : ""),
      el("td", { class: "muted" }, lap.valid ? "" : "invalid"),
    );
    if (openable) {
      row.addEventListener("click", () => table.dispatchEvent(new CustomEvent("lap-open", { detail: { sessionId, lap: lap.lap } })));
    }
    body.append(row);
  }
  if (!laps.length) body.append(el("tr", {}, el("td", { colSpan: 4 + sectorCount, class: "muted" }, "no completed lap yet")));
  table.replaceChildren(head, body);
}

export class SessionsView {
  constructor(api, { onError }) {
    this.api = api;
    this.onError = onError;
    this.driver = null;
    this.summary = null;
    this.overlay = null;
    this.trackCorners = new Map(); // trackId -> corners
    $("compare-go").addEventListener("click", () => this.compareSelected());
    $("csv-export").addEventListener("click", () => this.exportCsv());
    $("lap-table").addEventListener("lap-open", (event) => {
      $("compare-a").value = String(event.detail.lap);
      this.compareSelected();
    });
  }

  /** Show this driver's sessions (reloaded when `force` or when the driver changed). */
  async showDriver(driver, force = false) {
    if (!force && this.driver && this.driver.id === driver.id) return;
    const changed = !this.driver || this.driver.id !== driver.id;
    this.driver = driver;
    if (changed) this.closeSession();
    try {
      // The 50 newest (an array, newest first; older pages are behind the Link header, not shown here).
      const sessions = await this.api.get(`/api/sessions/${driver.id}?limit=50`);
      if (this.driver.id === driver.id) this.renderSessions(sessions);
    } catch (error) {
      this.onError(error);
    }
  }

  renderSessions(sessions) {
    const head = el("thead", {}, el("tr", {}, ["Session", "Track", "Car", "Started", "Laps", "Best", "Status"].map((h) => el("th", {}, h))));
    const body = el("tbody");
    for (const session of sessions) {
      const row = el(
        "tr",
        { class: `openable ${this.summary && this.summary.id === session.id ? "selected" : ""}`, "data-session": session.id },
        el("td", {}, session.name || "—"),
        el("td", {}, trackText(session) || "—"),
        el("td", {}, session.car || "—"),
        el("td", {}, new Date(session.startedAt).toLocaleString()),
        el("td", {}, String(session.lapCount)),
        el("td", { class: "mono" }, lapTimeText(session.bestLapTime)),
        el("td", {}, el("span", { class: `status ${session.status}` }, session.status)),
      );
      row.addEventListener("click", () => this.openSession(session.id));
      body.append(row);
    }
    if (!sessions.length) body.append(el("tr", {}, el("td", { colSpan: 7, class: "muted" }, "no sessions yet")));
    $("session-table").replaceChildren(head, body);
  }

  closeSession() {
    this.summary = null;
    $("session-detail").hidden = true;
    if (this.overlay) this.overlay.destroy();
    this.overlay = null;
  }

  /** Open a session's laps; with `lap`, also draw that lap over the best one. */
  async openSession(sessionId, lap = null) {
    try {
      const summary = await this.api.get(`/api/sessions/${sessionId}/summary`);
      this.summary = summary;
      for (const row of document.querySelectorAll("#session-table tr[data-session]")) {
        row.classList.toggle("selected", row.dataset.session === sessionId);
      }
      $("session-detail").hidden = false;
      const where = [trackText(summary) && `at ${trackText(summary)}`, summary.car && `in ${summary.car}`].filter(Boolean);
      $("session-title").textContent = `${summary.name || "Session"} — ${summary.lapCount} laps${where.length ? " " + where.join(" ") : ""}`;
      this.renderLaps();
      if (lap !== null) {
        $("compare-a").value = String(lap);
        await this.compareSelected();
      }
    } catch (error) {
      this.onError(error);
    }
  }

  /** Reload the open session when it is the one that just completed a lap. */
  async refreshIfShowing(sessionId) {
    if (!this.summary || this.summary.id !== sessionId) return;
    try {
      this.summary = await this.api.get(`/api/sessions/${sessionId}/summary`);
      this.renderLaps();
    } catch (error) {
      this.onError(error);
    }
  }

  renderLaps() {
    const { laps, bestLap } = this.summary;
    const a = $("compare-a");
    const b = $("compare-b");
    const keepA = a.value;
    const keepB = b.value;
    renderLapTable($("lap-table"), laps, bestLap, { sessionId: this.summary.id, openable: true, selected: Number(keepA) || null });
    const options = () => laps.map((lap) => el("option", { value: String(lap.lap) }, `Lap ${lap.lap} · ${lapTimeText(lap.lapTime)}${bestLap && bestLap.lap === lap.lap ? " ★" : ""}`));
    a.replaceChildren(...options());
    b.replaceChildren(...options());
    const known = (value) => laps.some((lap) => String(lap.lap) === value);
    a.value = known(keepA) ? keepA : laps.length ? String(laps[laps.length - 1].lap) : "";
    b.value = known(keepB) ? keepB : bestLap ? String(bestLap.lap) : a.value;
    $("compare-go").disabled = laps.length === 0;
  }

  async compareSelected() {
    if (!this.summary) return;
    const a = $("compare-a").value;
    const b = $("compare-b").value;
    if (!a || !b) return;
    for (const row of document.querySelectorAll("#lap-table tr[data-lap]")) row.classList.toggle("selected", row.dataset.lap === a);
    const channels = OVERLAY_CHANNELS.filter((name) => this.summary.channels.includes(name));
    try {
      const comparison = await this.api.get(
        `/api/sessions/${this.summary.id}/laps/${a}/compare?with=${b}&channels=${channels.join(",")}&points=${OVERLAY_POINTS}`,
      );
      const corners = await this.cornersFor(comparison);
      if (this.overlay) this.overlay.destroy();
      this.overlay = new OverlayCharts($("overlay"), comparison, corners, { a: `L${a}`, b: `L${b}` });
      $("overlay").dataset.laps = `${a}-${b}`;
    } catch (error) {
      this.onError(error);
    }
  }

  /** The track's stored corners, else corners guessed from the reference lap's speed. */
  async cornersFor(comparison) {
    const trackId = this.summary.trackId;
    if (trackId) {
      if (!this.trackCorners.has(trackId)) {
        const track = await this.api.get(`/api/tracks/${trackId}`);
        this.trackCorners.set(trackId, Array.isArray(track.corners) ? track.corners : []);
      }
      const stored = this.trackCorners.get(trackId);
      if (stored.length) return stored;
    }
    const speed = comparison.b.channels.speed;
    return speed ? cornersFromSpeed(comparison.distance, speed) : [];
  }

  async exportCsv() {
    if (!this.summary) return;
    try {
      await this.api.download(`/api/sessions/${this.summary.id}/telemetry?format=csv`, `session-${this.summary.id}.csv`);
    } catch (error) {
      this.onError(error);
    }
  }
}
