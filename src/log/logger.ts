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

/** Lines to `dest` (a file descriptor or path) in batches of `STDOUT_BUFFER_BYTES`, at most `STDOUT_FLUSH_MS` late. */
export function batchedDestination(dest: number | string): pino.DestinationStream & { flushSync(): void } {
  return pino.destination({ dest, sync: true, minLength: STDOUT_BUFFER_BYTES, periodicFlush: STDOUT_FLUSH_MS });
}

/** The root logger; components take `logger.child({ component })`. Secrets in headers and tokens are redacted. */
export function createLogger(options: LoggerOptions): Logger {
  const config: pino.LoggerOptions = {
    level: options.level,
    base: { service: SERVICE_NAME, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
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
