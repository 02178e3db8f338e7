// The team dashboard: login, the driver list, the live view of one driver and the sessions/laps view.
// Socket messages only fill bounded buffers; one requestAnimationFrame loop draws, so ten live drivers cost
// ten small buffer writes per message and one chart redraw per frame.

import { Api, LiveSocket } from "./api.js";
import { LiveCharts } from "./charts.js";
import { CuePanel } from "./cues.js";
import { el, setText, toast } from "./dom.js";
import { DriverLive, ReferenceLap, deltaText, lapTimeText, planePosition, trackText } from "./telemetry.js";
import { SessionsView, renderLapTable } from "./sessions.js";
import { TrackMap } from "./trackmap.js";

const $ = (id) => document.getElementById(id);
const CHART_WINDOW_S = 20;
const OVERVIEW_RATE = 4; // messages a second for drivers in the list
const SELECTED_RATE = 20; // messages a second for the driver on screen
const MAX_FEED = 50;
const POSITION_CHANNELS = ["x", "y", "lat", "lon"];

class Dashboard {
  constructor() {
    this.api = new Api(() => this.showLogin("Your session has ended; please log in again."));
    this.socket = new LiveSocket(() => this.api.token, {
      onMessage: (channel, data) => this.onMessage(channel, data),
      onState: (state, detail) => this.showConnection(state, detail),
      onFatal: (message) => this.showLogin(message),
      onRevoked: () => toast("Your access to a driver was withdrawn (team change): its live stream stopped."),
    });
    this.drivers = new Map(); // id -> DriverLive
    this.rows = new Map(); // id -> list item parts
    this.selected = null;
    this.charts = null;
    this.map = new TrackMap($("track-map"));
    this.cues = new CuePanel($("cue-list"), { onPlay: (url, button) => this.playUrl(url, button) });
    this.me = null;
    this.sessions = new SessionsView(this.api, { onError: (e) => toast(e.message) });
    this.liveSummary = null; // summary of the selected driver's current session
    this.lapRefresh = null;
    this.lastFrame = performance.now();
    this.lastOverview = 0;
    this.frames = 0;
    this.bindControls();
  }

  bindControls() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.login($("login-email").value.trim(), $("login-password").value);
    });
    $("logout").addEventListener("click", () => {
      this.api.logout();
      this.showLogin("");
    });
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    }
    $("cue-mute").addEventListener("click", () => this.toggleCueMute());
    $("live-laps").addEventListener("lap-open", (event) => {
      this.showTab("sessions");
      this.sessions.openSession(event.detail.sessionId, event.detail.lap);
    });
  }

  async start() {
    if (this.api.token) await this.showApp();
    else this.showLogin("");
    requestAnimationFrame((now) => this.frame(now));
  }

  showLogin(message) {
    this.socket.close();
    this.api.token = null;
    $("app-view").hidden = true;
    $("login-view").hidden = false;
    $("logout").hidden = true;
    $("whoami").textContent = "";
    $("login-error").textContent = message || "";
    $("login-email").focus();
  }

  async login(email, password) {
    $("login-submit").disabled = true;
    $("login-error").textContent = "";
    try {
      await this.api.login(email, password);
      await this.showApp();
    } catch (error) {
      $("login-error").textContent = error.status === 401 ? "Wrong email or password." : error.message;
    } finally {
      $("login-submit").disabled = false;
    }
  }

  async showApp() {
    let me;
    let drivers;
    try {
      [me, drivers] = await Promise.all([this.api.get("/api/me"), this.api.get("/api/drivers")]);
    } catch (error) {
      if (error.status !== 401) this.showLogin(error.message);
      return;
    }
    this.me = me;
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("logout").hidden = false;
    $("whoami").textContent = (me.user && (me.user.email || me.user.name)) || me.email || "";
    if (!this.charts) this.charts = new LiveCharts($("traces"));
    this.renderDriverList(drivers);
    performance.mark("pitbox:drivers-listed");
    this.socket.connect();
    for (const driver of drivers.slice(0, 100)) {
      this.socket.subscribe(`telemetry:${driver.id}`, { maxRate: OVERVIEW_RATE });
    }
    if (drivers.length) await this.selectDriver(drivers[0].id);
    else $("driver-name").textContent = "No drivers yet";
  }

  renderDriverList(drivers) {
    const list = $("driver-list");
    list.replaceChildren();
    this.drivers.clear();
    this.rows.clear();
    for (const driver of drivers) {
      this.drivers.set(driver.id, new DriverLive(driver));
      const dot = el("span", { class: "dot" });
      const speed = el("span", { class: "mini mono" }, "—");
      const lap = el("span", { class: "mini" }, "");
      const item = el(
        "li",
        { class: "driver", "data-driver": driver.id, tabIndex: 0, onclick: () => this.selectDriver(driver.id) },
        dot,
        el("span", { class: "driver-label" }, driver.name),
        lap,
        speed,
      );
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter") this.selectDriver(driver.id);
      });
      list.append(item);
      this.rows.set(driver.id, { item, dot, speed, lap });
    }
  }

  async selectDriver(id) {
    const previous = this.selected;
    if (previous === id) return;
    if (previous) {
      this.socket.subscribe(`telemetry:${previous}`, { maxRate: OVERVIEW_RATE });
      this.socket.unsubscribe(`video:${previous}`);
      this.socket.unsubscribe(`ai:${previous}`);
      this.rows.get(previous)?.item.classList.remove("selected");
    }
    this.selected = id;
    const live = this.drivers.get(id);
    this.rows.get(id)?.item.classList.add("selected");
    $("driver-name").textContent = live.driver.name;
    this.socket.subscribe(`telemetry:${id}`, { maxRate: SELECTED_RATE });
    this.socket.subscribe(`video:${id}`, { maxRate: 2 });
    this.socket.subscribe(`ai:${id}`);
    $("coaching-feed").replaceChildren();
    this.cues.clear();
    this.showCueMute(null);
    $("video-img").hidden = true;
    $("video-empty").hidden = false;
    this.map.clear();
    this.map.draw(NaN, NaN);
    this.liveSummary = null;
    $("live-laps").replaceChildren();
    live.changed = true;
    this.sessions.showDriver(live.driver);
    try {
      const newest = await this.api.get(`/api/sessions/${id}?limit=1`); // an array, newest first
      const current = live.sessionId || (newest[0] && newest[0].id);
      if (current && this.selected === id) await this.loadLiveSession(current);
    } catch (error) {
      toast(error.message);
    }
  }

  /** The selected driver's current session: its laps, its best lap as the delta reference, its coaching. */
  async loadLiveSession(sessionId) {
    const id = this.selected;
    const live = this.drivers.get(id);
    const summary = await this.api.get(`/api/sessions/${sessionId}/summary`);
    if (this.selected !== id) return;
    this.liveSummary = summary;
    $("live-session").textContent = [summary.name, trackText(summary), summary.car].filter(Boolean).join(" · ");
    renderLapTable($("live-laps"), summary.laps, summary.bestLap, { sessionId, openable: true });
    $("live-laps").closest(".table-wrap").scrollTop = 1e9;
    const laps = summary.laps;
    if (laps.length) {
      const last = laps[laps.length - 1];
      live.lastLapTime = last.lapTime;
      if (live.lapStartT === null) live.lapStartT = last.tEnd;
    }
    $("stat-last").textContent = lapTimeText(live.lastLapTime);
    $("stat-best").textContent = lapTimeText(summary.bestLap ? summary.bestLap.lapTime : NaN);
    this.showCueMute(summary);
    const best = summary.bestLap;
    if (best && (!live.reference || live.reference.lap.lap !== best.lap || live.reference.lap.sessionId !== sessionId)) {
      await this.loadReference(live, summary, best);
    }
    if (!live.feedbackLoaded || live.feedbackLoaded !== sessionId) {
      live.feedbackLoaded = sessionId;
      try {
        const feedback = await this.api.get(`/api/sessions/${sessionId}/feedback?limit=20`);
        if (this.selected === id) for (const item of feedback) this.addFeedback(item);
      } catch (error) {
        if (error.status !== 503) toast(error.message);
      }
    }
    await this.loadCues(id, sessionId);
  }

  /** The session's cues, with their efficacy (measured after each cue's lap, so read again as laps complete). */
  async loadCues(id, sessionId) {
    try {
      const cues = await this.api.get(`/api/sessions/${sessionId}/cues?limit=30`);
      if (this.selected === id) for (const cue of cues) this.cues.show(cue);
    } catch (error) {
      if (error.status !== 503) toast(error.message);
    }
  }

  showCueMute(summary) {
    const button = $("cue-mute");
    button.hidden = !summary;
    button.dataset.session = summary ? summary.id : "";
    button.dataset.muted = summary && summary.cuesMuted ? "true" : "false";
    button.textContent = summary && summary.cuesMuted ? "Cues muted" : "Cues on";
  }

  /** Mute or unmute the selected session's cues (the team's managers and engineers; a driver gets told no). */
  async toggleCueMute() {
    const button = $("cue-mute");
    const sessionId = button.dataset.session;
    if (!sessionId) return;
    try {
      const answer = await this.api.put(`/api/sessions/${sessionId}/coaching`, {
        cuesMuted: button.dataset.muted !== "true",
      });
      this.showCueMute({ id: sessionId, cuesMuted: answer.cuesMuted });
    } catch (error) {
      toast(error.message);
    }
  }

  /** A cue was said: its row, its mark on the map where it was said, and in the driver's own view, its audio. */
  onCue(cue) {
    const row = this.cues.show(cue);
    const live = this.drivers.get(cue.driverId);
    const pct = Number.isFinite(cue.firedDistance) ? cue.firedDistance / cue.lapLength : cue.triggerPct;
    const now = live ? live.snapshot() : null;
    if (this.map.markCue(pct, cue.corner, now ? now.px : NaN, now ? now.py : NaN)) {
      $("track-map").dataset.cueMarks = String(this.map.cueMarks.length);
    }
    if (live) live.changed = true;
    if (cue.audioUrl && this.me && this.me.driverId === cue.driverId) {
      this.playUrl(cue.audioUrl, row.querySelector("button.play"));
    }
  }

  async loadReference(live, summary, best) {
    const wanted = ["lapDistPct", ...POSITION_CHANNELS].filter((name) => summary.channels.includes(name));
    if (!wanted.includes("lapDistPct") && !wanted.some((n) => n !== "lapDistPct")) return;
    const data = await this.api.get(
      `/api/sessions/${summary.id}/telemetry?lap=${best.lap}&channels=${wanted.join(",")}&limit=100000`,
    );
    const columns = data.columns;
    if (columns.lapDistPct) live.reference = new ReferenceLap({ ...best, sessionId: summary.id }, columns.lapDistPct, columns.t);
    const origin = live.origin;
    const xs = [];
    const ys = [];
    for (let i = 0; i < columns.t.length; i += 1) {
      const row = { x: columns.x?.[i], y: columns.y?.[i], lat: columns.lat?.[i], lon: columns.lon?.[i] };
      const [px, py] = planePosition(row, origin);
      xs.push(px);
      ys.push(py);
    }
    if (this.selected === live.driver.id) this.map.setOutline(xs, ys, columns.lapDistPct);
    live.outline = [xs, ys];
  }

  scheduleLapRefresh(driverId) {
    if (driverId !== this.selected) return;
    clearTimeout(this.lapRefresh);
    this.lapRefresh = setTimeout(() => {
      const live = this.drivers.get(this.selected);
      if (live && live.sessionId) this.loadLiveSession(live.sessionId).catch((error) => toast(error.message));
      this.sessions.refreshIfShowing(live && live.sessionId);
      if (live) this.sessions.showDriver(live.driver, true);
    }, 300);
  }

  onMessage(channel, data) {
    const [kind, id] = channel.split(":");
    const live = this.drivers.get(id);
    if (!live) return;
    if (kind === "telemetry") {
      if (data.type === "telemetry") {
        const events = live.ingest(data, performance.now());
        if (id === this.selected && (events.newSession || events.lapChanged)) {
          if (events.newSession) this.sessions.showDriver(live.driver, true);
          this.scheduleLapRefresh(id);
        }
      } else if (data.type === "lap_completed") {
        live.lastLapTime = data.lap.lapTime;
        this.scheduleLapRefresh(id);
      }
    } else if (kind === "video" && id === this.selected && data.type === "video_frame") {
      this.showFrame(data);
    } else if (kind === "ai" && id === this.selected) {
      if (data.type === "cue") this.onCue(data.cue);
      else if (data.type === "cue_efficacy") this.cues.show(data.cue);
      else if (data.type === "cue_plan") for (const cue of data.cues) this.cues.show(cue);
      else if (data.feedback) this.addFeedback(data.feedback);
      else if (data.type === "coaching_audio") this.setFeedbackAudio(data.feedbackId, data.audioUrl);
    }
  }

  showFrame(message) {
    const img = $("video-img");
    const frame = message.frame;
    img.src = message.image ? `data:${frame.contentType};base64,${message.image}` : this.api.mediaUrl(frame.url);
    img.hidden = false;
    $("video-empty").hidden = true;
    $("video-time").textContent = new Date(frame.timestamp).toLocaleTimeString();
  }

  addFeedback(feedback) {
    const feed = $("coaching-feed");
    if (feed.querySelector(`[data-feedback="${CSS.escape(feedback.id)}"]`)) return;
    const play = el("button", { class: "play", type: "button", disabled: !feedback.audioUrl, title: "Play" }, "▶ Play");
    play.addEventListener("click", () => this.play(item, play));
    const items = (feedback.items || []).slice(0, 4).map((entry) =>
      el("li", { class: entry.kind === "strength" ? "strength" : "improvement" }, entry.text,
        Number.isFinite(entry.timeLost) && entry.timeLost !== 0 ? el("span", { class: "muted" }, ` (${deltaText(entry.timeLost)} s)`) : null),
    );
    const heading = [
      feedback.kind === "pit_wall" ? "Pit wall" : `Lap ${feedback.lap ?? "—"}`,
      feedback.status === "pending_approval" ? " · pending" : "",
    ].join("");
    const item = el(
      "li",
      { class: `feedback ${feedback.kind}`, "data-feedback": feedback.id, "data-audio": feedback.audioUrl || "" },
      el("div", { class: "feedback-head" }, el("strong", {}, heading), el("span", { class: "muted" }, new Date(feedback.createdAt).toLocaleTimeString()), play),
      el("p", {}, feedback.summary),
      items.length ? el("ul", {}, items) : null,
    );
    feed.prepend(item);
    while (feed.children.length > MAX_FEED) feed.lastElementChild.remove();
  }

  setFeedbackAudio(feedbackId, audioUrl) {
    const item = $("coaching-feed").querySelector(`[data-feedback="${CSS.escape(feedbackId)}"]`);
    if (!item) return;
    item.dataset.audio = audioUrl;
    item.querySelector("button.play").disabled = false;
  }

  play(item, button) {
    this.playUrl(item.dataset.audio, button);
  }

  playUrl(url, button) {
    if (!url) return;
    const audio = $("coaching-audio");
    audio.src = this.api.mediaUrl(url);
    for (const other of document.querySelectorAll("button.play.playing")) other.classList.remove("playing");
    button.classList.add("playing");
    audio.onended = () => button.classList.remove("playing");
    audio.play().catch((error) => {
      button.classList.remove("playing");
      toast(`cannot play: ${error.message}`);
    });
  }

  showTab(name) {
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
    $("live-view").hidden = name !== "live";
    $("sessions-view").hidden = name !== "sessions";
    if (name === "live" && this.selected) this.drivers.get(this.selected).changed = true;
  }

  showConnection(state, detail) {
    const pill = $("connection");
    pill.dataset.state = state;
    pill.className = `pill pill-${state}`;
    pill.textContent = state === "reconnecting" ? `reconnecting in ${detail}s` : state;
  }

  /** One frame: advance the selected driver's play clock, redraw what changed, refresh the list 4× a second. */
  frame(now) {
    const dt = Math.min(0.25, (now - this.lastFrame) / 1000);
    this.lastFrame = now;
    this.frames += 1;
    const live = this.selected ? this.drivers.get(this.selected) : null;
    if (live && this.charts && !$("live-view").hidden) {
      const before = live.playT;
      live.advance(dt);
      if (live.changed || live.playT !== before) this.drawLive(live);
      live.changed = false;
    }
    if (now - this.lastOverview > 250) {
      this.lastOverview = now;
      this.drawOverview();
    }
    requestAnimationFrame((t) => this.frame(t));
  }

  drawLive(live) {
    const ring = live.ring;
    const upTo = ring.countUpTo(Number.isFinite(live.playT) ? live.playT : Infinity);
    if (!upTo) return;
    const names = ["t", "speed", "gear", "throttle", "brake", "steering"];
    const all = ring.newest(names, ring.size);
    const t = all[0];
    const tEnd = t[upTo - 1];
    let start = upTo - 1;
    while (start > 0 && t[start - 1] > tEnd - CHART_WINDOW_S) start -= 1;
    this.charts.update(all.map((column) => column.subarray(start, upTo)));
    $("traces").dataset.points = String(ring.count);
    $("traces").dataset.shown = String(upTo - start);
    const now = live.snapshot();
    if (!now) return;
    setText("stat-speed", Number.isFinite(now.speed) ? now.speed.toFixed(0) : "—");
    setText("stat-gear", Number.isFinite(now.gear) ? (now.gear === 0 ? "N" : now.gear < 0 ? "R" : String(now.gear)) : "—");
    setText("stat-rpm", Number.isFinite(now.rpm) ? now.rpm.toFixed(0) : "—");
    setText("stat-lap", Number.isFinite(now.lap) ? String(now.lap) : "—");
    setText("stat-laptime", lapTimeText(now.lapElapsed));
    setText("stat-last", lapTimeText(live.lastLapTime));
    const delta = $("stat-delta");
    delta.textContent = deltaText(now.delta);
    delta.className = `value mono ${now.delta > 0 ? "slower" : now.delta < 0 ? "faster" : ""}`;
    $("rpm-fill").style.width = `${Math.min(100, (now.rpm / (live.maxRpm = Math.max(live.maxRpm || 1000, now.rpm || 0))) * 100)}%`;
    $("pedal-throttle").style.height = `${Math.round((now.throttle || 0) * 100)}%`;
    $("pedal-brake").style.height = `${Math.round((now.brake || 0) * 100)}%`;
    if (!this.map.hasOutline && ring.size > 600) {
      // No best lap yet: the live path of the last laps is the outline.
      const [px, py, pct] = ring.newest(["px", "py", "lapDistPct"], ring.size);
      this.map.setOutline(Array.from(px), Array.from(py), Array.from(pct));
    }
    this.map.draw(now.px, now.py);
  }

  drawOverview() {
    const now = performance.now();
    for (const [id, live] of this.drivers) {
      const row = this.rows.get(id);
      if (!row) continue;
      const fresh = live.receivedAt && now - live.receivedAt < 3000;
      row.dot.className = `dot ${fresh ? "on" : ""}`;
      const speed = live.ring.last("speed");
      row.speed.textContent = fresh && Number.isFinite(speed) ? `${speed.toFixed(0)} km/h` : "—";
      const lap = live.ring.last("lap");
      row.lap.textContent = fresh && Number.isFinite(lap) ? `L${lap}` : "";
    }
  }
}

const dashboard = new Dashboard();
window.pitboxDashboard = dashboard; // for the end-to-end tests and the benchmark
dashboard.start();
