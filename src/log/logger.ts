import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Extra base fields, e.g. `{ component: 'webhook' }`. */
  base?: Record<string, unknown>;
  /** Destination for tests and one-shot commands; defaults to stdout (NDJSON). */
  destination?: pino.DestinationStream;
  /**
   * Stdout in batches (`stdoutDestination`): for the webhook, which logs a line per direct write. The sync logs a
   * few lines per pass, and its lines (first complete reconcile, backfills) are read as they happen.
   */
  buffered?: boolean;
}

export const SERVICE_NAME = 'toolforge-jobs-storage';

/** Lines wait in memory until this many bytes are buffered (under sonic-boom's 16 KiB write size)… */
export const STDOUT_BUFFER_BYTES = 8 * 1024;
/** …or this long at most, so a quiet process's lines still reach `kubectl logs` promptly. */
export const STDOUT_FLUSH_MS = 250;

let stdout: pino.DestinationStream | undefined;

/**
 * The process's stdout, buffered: a line per direct write was a write(2) per admission review, a syscall that cost
 * the webhook more CPU than deciding the review. Lines are written in batches of up to `STDOUT_BUFFER_BYTES`, at
 * the latest `STDOUT_FLUSH_MS` after they were logged, and synchronously on process exit (normal end, `process.exit`,
 * an uncaught exception, the end of a SIGTERM drain). Only a kill that gives the process no exit (SIGKILL, OOM) loses
 * the last quarter-second of lines. One per process, shared by every logger that writes to stdout.
 */
export function stdoutDestination(): pino.DestinationStream {
  if (stdout !== undefined) return stdout;
  const boom = batchedDestination(1);
  process.once('exit', () => {
    try {
      boom.flushSync();
    } catch {
      // stdout is gone (EPIPE, closed): nothing left to write to.
    }
  });
  stdout = boom;
  return boom;
}

/** A pino destination that collects lines and writes them in batches; `flushSync` writes what it holds now. */
export interface BatchedDestination extends pino.DestinationStream {
  flushSync(): void;
}

/**
 * Lines to `dest` (a file descriptor or path) in batches of `STDOUT_BUFFER_BYTES`, at most `STDOUT_FLUSH_MS` late.
 * The deadline is a one-shot timer armed by the first line of a batch, not sonic-boom's `periodicFlush`: that is an
 * interval that wakes an idle process four times a second and writes zero bytes each time.
 */
export function batchedDestination(dest: number | string): BatchedDestination {
  // minLength 0 and sync: each batch handed over is written at once (sonic-boom keeps the partial-write and EAGAIN
  // handling); the batching is this wrapper's.
  const boom = pino.destination({ dest, sync: true, minLength: 0 });
  let held = '';
  let timer: NodeJS.Timeout | undefined;
  const flushSync = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (held === '') return;
    const batch = held;
    held = '';
    boom.write(batch);
  };
  return {
    write(line: string): void {
      held += line;
      if (held.length >= STDOUT_BUFFER_BYTES) flushSync();
      else if (timer === undefined) {
        timer = setTimeout(flushSync, STDOUT_FLUSH_MS);
        timer.unref();
      }
    },
    flushSync,
  };
}

/** The time `atTime` gives the lines written inside it; none: now. */
let heldTime: number | undefined;

/** pino's ISO time, of the moment `atTime` holds or else now. */
function isoTime(): string {
  return `,"time":"${new Date(heldTime ?? Date.now()).toISOString()}"`;
}

/**
 * Runs `write` with every line it logs timed at `ms` (epoch milliseconds) instead of now: for a line written after the
 * event it records (the webhook writes its decision lines in batches), so its time is the event's.
 */
export function atTime(ms: number, write: () => void): void {
  heldTime = ms;
  try {
    write();
  } finally {
    heldTime = undefined;
  }
}

/** The root logger; components take `logger.child({ component })`. Secrets in headers and tokens are redacted. */
export function createLogger(options: LoggerOptions): Logger {
  const config: pino.LoggerOptions = {
    level: options.level,
    base: { service: SERVICE_NAME, ...options.base },
    timestamp: isoTime,
    redact: {
      paths: ['req.headers.authorization', '*.token', 'token', '*.data'],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(config, options.destination ?? (options.buffered ? stdoutDestination() : pino.destination(1)));
}

/** A logger that writes nowhere, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
