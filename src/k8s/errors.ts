import { AppError } from '../errors.js';

/** A non-2xx answer of the API server (or a watch ERROR event), with its status and the Status reason. */
export class KubeApiError extends AppError {
  readonly status: number;
  readonly reason: string | undefined;

  constructor(status: number, message: string, reason?: string, cause?: unknown) {
    super('ERR_K8S_API', message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.reason = reason;
  }
}

/** client-node's ApiException, recognised by shape so that this module does not load client-node. */
interface ApiExceptionLike {
  code: number;
  body: unknown;
}

function isApiException(err: unknown): err is ApiExceptionLike {
  return (
    err instanceof Error &&
    err.constructor.name === 'ApiException' &&
    typeof (err as { code?: unknown }).code === 'number'
  );
}

/** The HTTP status of a client-node error, or undefined for errors that never reached the API server. */
export function statusOf(err: unknown): number | undefined {
  if (isApiException(err)) return err.code;
  if (err instanceof KubeApiError) return err.status;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusOf(err) === 404;
export const isConflict = (err: unknown): boolean => statusOf(err) === 409;
export const isGone = (err: unknown): boolean => statusOf(err) === 410;

/** A short description for logs: status and the API's reason/message, never the whole body and headers. */
export function describeApiError(err: unknown): { status?: number; reason?: string; message: string } {
  if (isApiException(err)) {
    const body: unknown = typeof err.body === 'string' ? safeJson(err.body) : err.body;
    const b = (typeof body === 'object' && body !== null ? body : {}) as { reason?: string; message?: string };
    return { status: err.code, ...(b.reason ? { reason: b.reason } : {}), message: b.message ?? `HTTP ${err.code}` };
  }
  if (err instanceof KubeApiError)
    return { status: err.status, ...(err.reason ? { reason: err.reason } : {}), message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}
