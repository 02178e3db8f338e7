// In-lap cues in the coaching panel: what each cue says, what became of it (said on lap N at X m, muted, …)
// and, after the lap it was said on, whether the corner changed (docs/cues.md). Text only, never innerHTML.

import { el } from "./dom.js";

const MAX_CUES = 30;
const REASONS = {
  muted: "muted by the pit wall",
  in_pit: "not said: in the pit lane",
  invalid_lap: "not said: the lap was invalid",
  yellow_flag: "not said: yellow flag",
  red_flag: "not said: red flag",
  chequered_flag: "not said: chequered flag",
  off_pace: "not said: off pace",
  audio_late: "not said: its audio was not ready",
  passed_before_armed: "not said: the car was past it",
  not_reached: "not reached",
  replaced: "replaced by a newer lap's cues",
  cause_gone: "not said: already fixed",
};

/** One line on what a cue did, e.g. "helped: 0.45 s gained · brake point 898 → 928 m (ref 928)". */
export function efficacyText(efficacy) {
  if (!efficacy) return "";
  if (efficacy.verdict === "not_measured") return `not measured: ${efficacy.reason || "—"}`;
  const time = efficacy.timeLost || {};
  const gain = Number(time.gain);
  const words = { helped: "helped", no_change: "no change", worse: "worse" }[efficacy.verdict] || efficacy.verdict;
  const parts = [`${words}: ${gain >= 0 ? `${gain.toFixed(2)} s gained` : `${(-gain).toFixed(2)} s lost`}`];
  const cause = efficacy.cause;
  if (cause && cause.before !== null && cause.after !== null) {
    const unit = cause.unit ? ` ${cause.unit}` : "";
    const name = cause.kind.replace("_", " ");
    const reference = cause.reference !== null ? ` (ref ${Math.round(cause.reference)})` : "";
    parts.push(`${name} ${Math.round(cause.before)} → ${Math.round(cause.after)}${unit}${reference}`);
  }
  return parts.join(" · ");
}

/** What became of a cue, in words. */
export function cueStateText(cue) {
  if (cue.state === "fired") return `said on lap ${cue.lap} at ${Math.round(cue.firedDistance)} m`;
  if (cue.state === "armed" || cue.state === "planned") return `for lap ${cue.lap} at ${Math.round(cue.triggerDistance)} m`;
  if (cue.state === "pending_approval") return "waiting for approval";
  return REASONS[cue.reason] || cue.reason || cue.state;
}

/** The list of cues under the coaching feed. */
export class CuePanel {
  constructor(list, { onPlay }) {
    this.list = list;
    this.onPlay = onPlay;
  }

  clear() {
    this.list.replaceChildren();
  }

  /** Add a cue, or bring its row up to date (a later state, its efficacy). */
  show(cue) {
    const existing = this.list.querySelector(`[data-cue="${CSS.escape(cue.id)}"]`);
    const play = el("button", { class: "play", type: "button", disabled: !cue.audioUrl, title: "Play" }, "▶");
    const row = el(
      "li",
      {
        class: `cue ${cue.state}${cue.efficacy ? ` ${cue.efficacy.verdict}` : ""}`,
        "data-cue": cue.id,
        "data-state": cue.state,
        "data-audio": cue.audioUrl || "",
      },
      el("div", { class: "feedback-head" }, el("strong", {}, cue.text), play),
      el("div", { class: "muted cue-state" }, cueStateText(cue)),
      cue.efficacy ? el("div", { class: "cue-efficacy" }, efficacyText(cue.efficacy)) : null,
    );
    play.addEventListener("click", () => this.onPlay(row.dataset.audio, play));
    if (existing) existing.replaceWith(row);
    else this.list.prepend(row);
    while (this.list.children.length > MAX_CUES) this.list.lastElementChild.remove();
    return row;
  }
}
