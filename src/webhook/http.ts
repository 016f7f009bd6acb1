import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { errorAnswer } from './admission.js';
import type { AdmissionHandler, Answer } from './admission.js';
import type { WebhookName } from './policy/types.js';

/** The path each webhook is served at (the generated webhook configuration points at these). */
export const ADMISSION_PATH: Readonly<Record<WebhookName, string>> = {
  'protect-storage': '/validate/protect-storage',
  'record-direct-writes': '/validate/record-direct-writes',
};

/** Admission paths and the webhook each one serves. */
export const ADMISSION_PATHS: Readonly<Record<string, WebhookName>> = Object.fromEntries(
  Object.entries(ADMISSION_PATH).map(([webhook, path]) => [path, webhook as WebhookName]),
);

/**
 * An AdmissionReview holds the object and the old object; each may be up to etcd's 1.5 MiB request limit, and JSON
 * escaping can grow them, so a little over twice that is the most a legitimate review needs.
 */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

/**
 * What the webhook reads of a request: node:http's `IncomingMessage` (HTTP/1.1) and node:http2's compat
 * `Http2ServerRequest` (h2) both fit, so one code path serves both protocols.
 */
export type WebhookRequest = Readable & {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
};

/** What the webhook writes of a response: `ServerResponse` (HTTP/1.1) and `Http2ServerResponse` (h2) both fit. */
export interface WebhookResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  end(body: string): unknown;
}

function send(res: WebhookResponse, answer: Answer): void {
  res.writeHead(answer.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}

function reject(res: WebhookResponse, status: number, message: string): void {
  send(res, errorAnswer(status, message));
}

export function admissionWebhookFor(url: string | undefined): WebhookName | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return ADMISSION_PATHS[q === -1 ? url : url.slice(0, q)];
}

/** Reads the JSON body (bounded) and answers it with `handler`. Plain node types, so express, HTTP/1.1 and h2 share it. */
export function serveAdmission(
  handler: AdmissionHandler,
  webhook: WebhookName,
  req: WebhookRequest,
  res: WebhookResponse,
): void {
  const type = req.headers['content-type'];
  if (type !== undefined && !type.startsWith('application/json')) {
    req.resume();
    reject(res, 415, 'AdmissionReview: content-type must be application/json');
    return;
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_REVIEW_BYTES) {
    req.resume();
    reject(res, 413, `AdmissionReview: body larger than ${MAX_REVIEW_BYTES} bytes`);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REVIEW_BYTES) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) reject(res, 413, `AdmissionReview: body larger than ${MAX_REVIEW_BYTES} bytes`);
    else
      send(
        res,
        handler(
          webhook,
          chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'),
        ),
      );
  });
  req.on('error', () => req.destroy());
}

/**
 * The admission POSTs, answered before any framework code runs; returns false for every other request. The
 * apiserver waits on this path for each write, so it skips express's routing and middleware.
 */
export function admissionFastPath(handler: AdmissionHandler): (req: WebhookRequest, res: WebhookResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const webhook = admissionWebhookFor(req.url);
    if (webhook === undefined) return false;
    serveAdmission(handler, webhook, req, res);
    return true;
  };
}
