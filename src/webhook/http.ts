import type { IncomingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import { pathOf } from '../http/routes.js';
import type { HttpRequest, HttpResponse } from '../http/routes.js';
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

/** What the webhook reads of a request: HTTP/1.1's `IncomingMessage` or h2's compat `Http2ServerRequest`. */
export type WebhookRequest = HttpRequest;

/** What the webhook writes of a response: HTTP/1.1's `ServerResponse` or h2's compat `Http2ServerResponse`. */
export type WebhookResponse = HttpResponse;

function send(res: WebhookResponse, answer: Answer): void {
  res.writeHead(answer.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}

/** The webhook an admission POST to `url` is for, if any. */
export function admissionWebhookFor(url: string | undefined): WebhookName | undefined {
  return url === undefined ? undefined : ADMISSION_PATHS[pathOf(url)];
}

/**
 * Reads the JSON body (bounded) from `body` and hands `handler`'s answer to `reply`, once. Shared by the router
 * (HTTP/1.1 and h2 compat) and the h2 stream path.
 */
function readReview(
  handler: AdmissionHandler,
  webhook: WebhookName,
  body: Readable,
  headers: IncomingHttpHeaders,
  reply: (answer: Answer) => void,
): void {
  const type = headers['content-type'];
  if (type !== undefined && !type.startsWith('application/json')) {
    body.resume();
    reply(errorAnswer(415, 'AdmissionReview: content-type must be application/json'));
    return;
  }
  const declared = Number(headers['content-length'] ?? 0);
  if (declared > MAX_REVIEW_BYTES) {
    body.resume();
    reply(errorAnswer(413, `AdmissionReview: body larger than ${MAX_REVIEW_BYTES} bytes`));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REVIEW_BYTES) tooLarge = true;
    else chunks.push(chunk);
  });
  body.on('end', () => {
    if (tooLarge) reply(errorAnswer(413, `AdmissionReview: body larger than ${MAX_REVIEW_BYTES} bytes`));
    else
      reply(
        handler(
          webhook,
          chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'),
        ),
      );
  });
  body.on('error', () => body.destroy());
}

/** The admission route: reads the JSON body (bounded) and answers it with `handler`, over HTTP/1.1 or h2 compat. */
export function serveAdmission(
  handler: AdmissionHandler,
  webhook: WebhookName,
  req: WebhookRequest,
  res: WebhookResponse,
): void {
  readReview(handler, webhook, req, req.headers, (answer) => send(res, answer));
}

/**
 * The same over node:http2's core API, for kube-apiserver's h2 calls: HEADERS and the last DATA frame carrying
 * END_STREAM leave in one write. The compat response ends its stream a tick after its data, which costs an empty
 * DATA frame in a write (a syscall, a TLS record and an event-loop turn) of its own per review.
 */
export function serveAdmissionStream(
  handler: AdmissionHandler,
  webhook: WebhookName,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): void {
  readReview(handler, webhook, stream, headers, (answer) => {
    if (stream.destroyed || stream.closed) return;
    stream.respond({
      ':status': answer.status,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(answer.body),
    });
    stream.end(answer.body);
  });
}
