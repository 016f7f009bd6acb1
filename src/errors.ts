/** Stable error codes: callers branch on `code`, never on message text. */
export type AppErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_FILE'
  | 'ERR_INPUT_PARSE'
  | 'ERR_INPUT_READ'
  | 'ERR_STORAGE_DECODE'
  | 'ERR_STORAGE_VERSION'
  | 'ERR_ADMISSION_DECODE'
  | 'ERR_TLS_LOAD'
  | 'ERR_K8S_API'
  | 'ERR_K8S_DENIED'
  | 'ERR_K8S_UNREACHABLE'
  | 'ERR_USAGE';

export class AppError extends Error {
  readonly code: AppErrorCode;

  constructor(code: AppErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ConfigError extends AppError {
  readonly issues: readonly string[];

  constructor(issues: readonly string[], options?: { cause?: unknown }) {
    super('ERR_CONFIG_INVALID', `invalid configuration:\n  - ${issues.join('\n  - ')}`, options);
    this.issues = issues;
  }
}

/** Bad user input (a file that is not YAML, a CR spec that does not decode): says what and where. */
export class InputError extends AppError {
  readonly location: string | undefined;

  constructor(
    code: 'ERR_INPUT_PARSE' | 'ERR_INPUT_READ' | 'ERR_STORAGE_DECODE' | 'ERR_STORAGE_VERSION' | 'ERR_ADMISSION_DECODE',
    message: string,
    location?: string,
    options?: { cause?: unknown },
  ) {
    super(code, location === undefined ? message : `${location}: ${message}`, options);
    this.location = location;
  }
}

export class UsageError extends AppError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What went wrong with an input, and where: `path` names the field at fault (`''` for the input as a whole). */
export interface Problem {
  path: string;
  message: string;
}

/** A problem that also says which kind of failure it is, for callers that branch on it (never on the message). */
export interface CodedProblem<C extends string> extends Problem {
  code: C;
}

/**
 * The one shape of "this worked, or here is why not" for results that are data rather than thrown errors. `E` is
 * `Problem` unless the caller needs more than where and what (e.g. a `CodedProblem`).
 */
export type Result<T, E extends Problem = Problem> = { ok: true; value: T } | { ok: false; problem: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function problem(path: string, message: string): { ok: false; problem: Problem } {
  return { ok: false, problem: { path, message } };
}

/** The failed result carrying `p` as it is (a `CodedProblem`, or any other `Problem`). */
export function failure<E extends Problem>(p: E): { ok: false; problem: E } {
  return { ok: false, problem: p };
}

/** `path: message`, or only the message when the problem is with the input as a whole. */
export function formatProblem(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}
