import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Extra base fields, e.g. `{ component: 'webhook' }`. */
  base?: Record<string, unknown>;
  /** Destination for tests; defaults to stdout (NDJSON). */
  destination?: pino.DestinationStream;
}

export const SERVICE_NAME = 'toolforge-jobs-storage';

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
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** A logger that writes nowhere, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
