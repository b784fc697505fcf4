// humansandbox/stop-signals.ts — SIGINT, SIGTERM and SIGHUP to `aido run` (Ctrl-C, a
// supervisor). The run still ends by the signal, at once, but first writes what it has
// (run.ts: summary.json, the output so far, the refusals the network log counted). The
// listener is set before anything of the run is on disk, so no signal finds a run with
// nothing written but run.json.

/** Signals that stop `aido run`. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * The stop signals, listened to from before a run's folder is made until the run ends. With
 * no listener a signal ends the process at once: one during the synchronous steps that set
 * a run up (its folder, run.json, the stream files, where removing what an earlier task
 * left takes as long as that task made it) left run.json alone. Listened to, it waits for
 * the event loop's next turn, and the run's own handler (onStop) is set before the setup.
 * The signal then ends the process as before, once the handler is done. A setup that fails
 * calls settle() before the listener goes, so such a signal is not lost with it.
 */
export class StopSignals {
  private handler: ((signal: NodeJS.Signals) => void) | undefined;
  private readonly listener = (signal: NodeJS.Signals): void => {
    this.release();
    this.handler?.(signal);
    process.kill(process.pid, signal);
  };

  constructor() {
    for (const signal of STOP_SIGNALS) process.on(signal, this.listener);
  }

  /** What a stop signal does first (write what the run has). */
  onStop(handler: (signal: NodeJS.Signals) => void): void {
    this.handler = handler;
  }

  /**
   * Let a stop signal that came during synchronous work be handled before the caller goes
   * on (to release the listener, say): its listener runs on a later turn of the event loop,
   * once libuv has read it in a poll phase. Two turns: the first may start inside a poll
   * phase's callback, after that phase read its signals.
   */
  async settle(): Promise<void> {
    for (let turn = 0; turn < 2; turn++) await new Promise((r) => setImmediate(r));
  }

  /** Stop listening: the default action again (the run has written its summary, or failed). */
  release(): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.listener);
  }
}
