// cli/watch/screen.ts — puts the watch on an output stream. On a terminal the frame is
// redrawn in place with plain ANSI (cursor up, clear to end of screen), at most every
// `minIntervalMs`; elsewhere (a pipe, a log file, CI) new activity is appended as plain
// lines, so the output stays readable as a log.

import { newActivityLines, renderFrame, summaryLines } from "./render.js";
import type { WatchState } from "./state.js";

export interface ScreenOutput {
  write(text: string): void;
  isTTY: boolean;
  /** Terminal width; 100 when unknown. */
  columns?: number;
}

const CURSOR_UP = (n: number) => `\x1b[${n}A`;
const CLEAR_DOWN = "\x1b[J";
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";

export class WatchScreen {
  private drawnLines = 0;
  private printedSeq = 0;
  private lastDraw = 0;
  private pending: WatchState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * `approveWith`: the command the approvals hint names (a demo on a home of its own names
   * that home, so the command works as printed).
   */
  constructor(
    private readonly out: ScreenOutput,
    private readonly minIntervalMs = 100,
    private readonly approveWith = "aido approvals",
  ) {
    if (out.isTTY) out.write(HIDE_CURSOR);
  }

  /** Show a new state: redraw (throttled) on a terminal, append new lines otherwise. */
  update(state: WatchState): void {
    // After close() the summary is below the last frame: a late answer (cluster.status in
    // flight when the goal ended) must not move up over it and clear it.
    if (this.closed) return;
    if (!this.out.isTTY) {
      for (const line of newActivityLines(state, this.printedSeq)) this.out.write(`${line}\n`);
      this.printedSeq = state.activitySeq;
      return;
    }
    this.pending = state;
    const wait = this.lastDraw + this.minIntervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Draw the last state now, print the summary, and give the terminal its cursor back. */
  close(state: WatchState): void {
    if (this.closed) return;
    if (this.out.isTTY) {
      this.pending = state;
      this.flush();
      this.out.write(SHOW_CURSOR);
    } else this.update(state);
    for (const line of summaryLines(state)) this.out.write(`${line}\n`);
    this.closed = true;
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const state = this.pending;
    if (!state) return;
    this.pending = undefined;
    this.lastDraw = Date.now();
    const lines = renderFrame(state, Math.max(40, (this.out.columns ?? 100) - 1), this.approveWith);
    const up = this.drawnLines > 0 ? CURSOR_UP(this.drawnLines) : "";
    this.out.write(`${up}\r${CLEAR_DOWN}${lines.join("\n")}\n`);
    this.drawnLines = lines.length;
  }
}
