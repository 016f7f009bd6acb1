/**
 * The one lifecycle of the daemons (`webhook`, `sync`): a `Process` started, run until a signal, drained.
 */
import type { Logger } from '../log/logger.js';

/** A daemon as the CLI runs it: built by `compose.ts`, nothing running until `start`. */
export interface Process {
  /** Starts everything the process runs (its HTTP servers included); resolves once it serves. */
  start(): Promise<void>;
  /**
   * Graceful stop (idempotent): not ready, stop taking work, finish what is in flight, release everything. Resolves
   * once everything has stopped.
   */
  stop(): Promise<void>;
  /** Cuts what a stop in progress still waits on (open connections), so it ends at once. */
  force(): void;
  /** Whether the process is ready now (its /readyz). */
  ready(): boolean;
  /** Where its lifecycle's lines go. */
  readonly logger: Logger;
}

/** What signals arrive on: `process`, or an emitter in tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface UntilSignalOptions {
  /** Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /** Default `process`. */
  source?: SignalSource;
}

/**
 * Starts `proc` and runs it until a signal: the first SIGTERM or SIGINT drains it (`stop`), a second one forces
 * (`force`: open connections are closed, so the drain ends at once), and a third takes the signal's default action.
 * Resolves with the first signal once the process has stopped; rejects if it fails to start (after stopping what
 * did start).
 */
export async function untilSignal(proc: Process, options: UntilSignalOptions = {}): Promise<NodeJS.Signals> {
  const { logger } = proc;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const source = options.source ?? process;
  let first: NodeJS.Signals | undefined;
  let requested: (signal: NodeJS.Signals) => void = () => undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (requested = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first === undefined) {
      first = signal;
      logger.info({ signal }, 'shutdown requested');
      requested(signal);
      return;
    }
    logger.warn({ signal }, 'second signal, forcing shutdown');
    proc.force();
    // Nothing listens any more: a third signal takes its default action and ends the process at once.
    unlisten();
  };
  const unlisten = (): void => {
    for (const s of signals) source.off(s, onSignal);
  };
  // Listening from before the start: a signal during a slow start still drains instead of killing the process.
  for (const s of signals) source.on(s, onSignal);
  try {
    try {
      await proc.start();
    } catch (err) {
      await proc.stop();
      throw err;
    }
    const signal = await stopRequested;
    await proc.stop();
    return signal;
  } finally {
    unlisten();
  }
}
