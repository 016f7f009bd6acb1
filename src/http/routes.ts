/**
 * The small HTTP layer both daemons serve their open routes with: one request and response shape that node:http
 * (HTTP/1.1) and node:http2's compat API both fit, JSON answers, and the probe and metrics routes (/healthz, /readyz,
 * /metrics) the webhook and the sync share. No framework: express 5 does not run over h2, and these routes need none.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, RequestListener, Server } from 'node:http';
import type { Readable } from 'node:stream';
import type { Registry } from 'prom-client';

/**
 * What a route reads of a request: node:http's `IncomingMessage` (HTTP/1.1) and node:http2's compat
 * `Http2ServerRequest` (h2) both fit, so one code path serves both protocols.
 */
export type HttpRequest = Readable & {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
};

/** What a route writes of a response: `ServerResponse` (HTTP/1.1) and `Http2ServerResponse` (h2) both fit. */
export interface HttpResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  end(body: string): unknown;
}

/** Answers one request. */
export type Route = (req: HttpRequest, res: HttpResponse) => void;

/** A request's path without its query. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** A JSON answer with its length. */
export function sendJson(res: HttpResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** 404 for anything no route serves; a request body is read and dropped so the connection stays usable. */
export const notFound: Route = (req, res) => {
  req.resume();
  sendJson(res, 404, { message: 'not found' });
};

export interface Readiness {
  ready: boolean;
  /** Each condition and whether it holds, e.g. `{ certificate: true, phase: false, draining: false }`. */
  checks: Record<string, boolean>;
}

export interface ProbeDeps {
  readiness: () => Readiness;
  registry: Registry;
}

/**
 * The open routes of a process, by GET path: /healthz (the process answers), /readyz (200 or 503 with each check)
 * and /metrics (Prometheus text).
 */
export function probeRoutes(deps: ProbeDeps): ReadonlyMap<string, Route> {
  const { readiness, registry } = deps;
  return new Map<string, Route>([
    ['/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' })],
    [
      '/readyz',
      (_req, res) => {
        const state = readiness();
        sendJson(res, state.ready ? 200 : 503, { status: state.ready ? 'ready' : 'not ready', checks: state.checks });
      },
    ],
    [
      '/metrics',
      (_req, res) => {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
            res.end(text);
          },
          () => sendJson(res, 500, { message: 'metrics unavailable' }),
        );
      },
    ],
  ]);
}

/** A route serving `gets` by path for GET requests, and 404 for every other request. */
export function getRoutes(gets: ReadonlyMap<string, Route>): Route {
  return (req, res) => {
    const route = req.method === 'GET' ? gets.get(pathOf(req.url)) : undefined;
    if (route === undefined) {
      notFound(req, res);
      return;
    }
    req.resume();
    route(req, res);
  };
}

/**
 * Idle keep-alive connections outlive the clients' own idle timeouts (Prometheus, kubelet, undici's 4 s), so a client
 * never sends a request on a connection the server is closing at that moment (node's default is 5 s).
 */
const KEEP_ALIVE_MS = 65_000;

/** A plain HTTP/1.1 server for `listener` (a `Route`, or the sync's admin app), listening on `host:port`. */
export function listenHttp(listener: RequestListener, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, listener);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
