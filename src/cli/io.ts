import { createInterface } from 'node:readline/promises';
import { ConfigError, errorMessage } from '../errors.js';
import { toSafeYaml } from '../k8s/yaml.js';

/** Where a command writes: the CLI's streams in production, strings in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin?: () => string;
  /** Whether stderr is a terminal: progress then updates one line instead of printing one every few seconds. */
  stderrIsTTY?: boolean;
  /** Whether stdin is a terminal, so a person can answer a question (`ask`). */
  stdinIsTTY?: boolean;
  /** Asks a question (on stderr) and resolves with the line read from stdin. */
  ask?: (question: string) => Promise<string>;
}

/** One line read from the terminal after `question` (written to stderr, so stdout stays the command's output). */
async function askOnTerminal(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

export const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
  stdinIsTTY: process.stdin.isTTY === true,
  ask: askOnTerminal,
};

/**
 * Exit codes: 0 success, 1 the input had errors or the cluster refused or could not be reached, 2 usage and
 * configuration errors (a missing or empty kubeconfig included: nothing was tried).
 */
export const EXIT = { ok: 0, inputErrors: 1, usage: 2, config: 2 } as const;

/** An error as the CLI says it: a configuration error with a single issue on one line, else its message. */
export function errorText(err: unknown): string {
  return err instanceof ConfigError && err.issues.length === 1
    ? `invalid configuration: ${err.issues[0]}`
    : errorMessage(err);
}

/** `-o json|yaml`: a command's result as one document instead of its table or text. */
export type DocumentFormat = 'json' | 'yaml';

/** Writes `value` to stdout as one JSON document (indented) or YAML document (read back as the same values). */
export function writeDocument(io: CliIo, value: unknown, format: DocumentFormat): void {
  io.stdout(format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toSafeYaml(value));
}

/** Rows as left-aligned columns two spaces apart, one line each, without trailing blanks. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Where a long write stands: `done` of `total` items, `seconds` after it started. */
export interface ProgressState {
  done: number;
  total: number;
  seconds: number;
}

/** A duration for people: "42 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * One progress line: `<label>: done/total (percent), rate <unit>/s, ETA`. The rate is the average since the start;
 * before anything is done there is no rate and no ETA yet.
 */
export function formatProgress(label: string, unit: string, p: ProgressState): string {
  const total = Math.max(p.total, p.done);
  const percent = total === 0 ? 100 : Math.floor((100 * p.done) / total);
  const head = `${label}: ${p.done}/${total} (${percent}%)`;
  if (p.done === 0 || p.seconds <= 0) return `${head}, ETA unknown`;
  const rate = p.done / p.seconds;
  const eta = p.done >= total ? 'done' : `ETA ${formatDuration((total - p.done) / rate)}`;
  return `${head}, ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} ${unit}/s, ${eta}`;
}

/**
 * Progress on stderr while a command writes: on a terminal one line rewritten in place every `ttyEveryMs`; off a
 * terminal `report` (a log line) every `logEveryMs` at most. `stop()` ends the line.
 */
export function showProgress(
  io: CliIo,
  o: {
    read: () => Omit<ProgressState, 'seconds'>;
    format: (p: ProgressState) => string;
    report: (p: ProgressState) => void;
    now?: () => number;
    ttyEveryMs?: number;
    logEveryMs?: number;
  },
): { stop: () => void } {
  const now = o.now ?? Date.now;
  const started = now();
  const state = (): ProgressState => ({ ...o.read(), seconds: (now() - started) / 1000 });
  const tty = io.stderrIsTTY === true;
  const timer = setInterval(
    () => {
      const p = state();
      if (tty) io.stderr(`\r${o.format(p)}\x1b[K`);
      else o.report(p);
    },
    tty ? (o.ttyEveryMs ?? 200) : (o.logEveryMs ?? 5000),
  );
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      if (tty) io.stderr(`\r${o.format(state())}\x1b[K\n`);
    },
  };
}
