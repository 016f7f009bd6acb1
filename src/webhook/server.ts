import http2 from 'node:http2';
import type { Http2SecureServer, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import { pathOf } from '../http/routes.js';
import type { Readiness } from '../http/routes.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { phaseBeforeKnown } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { PhaseView } from '../phase/source.js';
import { createAdmission } from './admission.js';
import type { AdmissionHandler } from './admission.js';
import { admissionWebhookFor, serveAdmissionStream } from './http.js';
import { webhookRoutes } from './routes.js';
import {
  CertificateReloader,
  callerCheck,
  clientAuthServerOptions,
  refuseCaller,
  secureContextOptions,
} from './tls.js';
import type { CallerSocket } from './tls.js';

/**
 * What the webhook needs of the phase: a PhaseSource (started and stopped by its caller), or a fixed one in tests.
 */
export type WebhookPhase = Pick<PhaseView, 'current' | 'known'>;

export interface RunWebhookOptions {
  config: Config;
  logger: Logger;
  metrics: WebhookMetrics;
  /** The phase in force. Until it is known the webhook is not ready and denies only what every phase denies. */
  phase: WebhookPhase;
  /** Build version for `build_info`. */
  version?: string;
}

/** Connections the webhook has accepted since it started, by protocol, and how many are open now. */
export interface ConnectionCounts {
  /** h2 sessions (ALPN `h2`): kube-apiserver multiplexes its admission calls over one. */
  h2: number;
  /** HTTP/1.1 connections (ALPN `http/1.1` or none): probes, scrapes, older clients. */
  http1: number;
  open: number;
}

export interface WebhookHandle {
  server: Http2SecureServer;
  address: AddressInfo;
  phase: WebhookPhase;
  readiness(): Readiness;
  connections(): ConnectionCounts;
  /** Graceful shutdown (idempotent): not ready, wait the shutdown delay, stop accepting, finish in-flight requests. */
  close(): Promise<void>;
  /** Cuts a shutdown short: the rest of the shutdown delay is skipped and every connection closed now. */
  force(): void;
  /** Resolves once a shutdown has finished. */
  closed: Promise<void>;
}

/** The apiserver reuses connections; idle ones must outlive its idle timeout so a request never meets a closing socket. */
const KEEP_ALIVE_MS = 120_000;
/** Far above the ≤ 3 s the apiserver waits for an answer; they only bound stuck or slow clients. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * How long a review's counters, timing and decision line may wait after its answer, to be applied in a batch (see
 * `createAdmission`). Far inside a scrape interval, and each scrape applies what waits first.
 */
export const RECORDS_BATCH_MS = 100;

/** Waits `ms`, or less if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

function listen(server: Http2SecureServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * How long an h2 peer has, after the first GOAWAY of a drain, to stop opening streams on the session before the
 * final GOAWAY closes it. Many round trips on a cluster network; well inside the shutdown timeout.
 */
export const GOAWAY_NOTICE_MS = 1_000;

/**
 * The server's live connections: h2 sessions and HTTP/1.1 sockets with their in-flight request counts, so a drain
 * can close idle HTTP/1.1 connections at once, the rest after their last answer, and retire every h2 session.
 */
class Connections {
  readonly sessions = new Set<ServerHttp2Session>();
  readonly http1 = new Map<TLSSocket, number>();
  opened = { h2: 0, http1: 0 };
  draining = false;
  private deadline = Infinity;

  constructor(server: Http2SecureServer) {
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') return;
      this.opened.http1 += 1;
      this.http1.set(socket, 0);
      socket.once('close', () => this.http1.delete(socket));
    });
    server.on('session', (session) => {
      this.opened.h2 += 1;
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.draining) this.retire(session);
    });
  }

  counts(): ConnectionCounts {
    return { ...this.opened, open: this.sessions.size + this.http1.size };
  }

  /** Counts an HTTP/1.1 request until its answer is done; while draining its connection closes after it. */
  track(
    socket: TLSSocket,
    res: { once(event: 'close', fn: () => void): unknown; setHeader(k: string, v: string): unknown },
  ): void {
    const n = this.http1.get(socket);
    if (n === undefined) return;
    this.http1.set(socket, n + 1);
    if (this.draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      const left = (this.http1.get(socket) ?? 1) - 1;
      if (!this.http1.has(socket)) return;
      this.http1.set(socket, left);
      if (this.draining && left === 0) socket.end();
    });
  }

  /** Retires every h2 session (in-flight streams finish) and closes idle HTTP/1.1 connections. */
  drain(deadline: number): void {
    this.draining = true;
    this.deadline = deadline;
    for (const session of this.sessions) this.retire(session);
    for (const [socket, inFlight] of this.http1) if (inFlight === 0) socket.end();
  }

  /**
   * A graceful end of an h2 session (RFC 9113 §6.8) that leaves the peer time to read it. The GOAWAY names the last
   * stream processed: the peer opens no more streams here, and a stream it sent meanwhile is refused unprocessed,
   * which it retries on another connection (Go's client, kube-apiserver's, does). The session stays open
   * GOAWAY_NOTICE_MS longer; then close() ends it once its streams are done. Closing at once races the peer's next
   * request: a stream sent before the peer read the GOAWAY reaches a closed socket, the kernel answers with a reset,
   * the GOAWAY is lost with it, and kube-apiserver fails the call (its failure policy lets it through or denies it).
   */
  private retire(session: ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    const timer = setTimeout(() => session.close(), this.noticeMs());
    session.once('close', () => clearTimeout(timer));
  }

  /** The notice a GOAWAY gives, shortened so the drain still ends before its deadline. */
  noticeMs(): number {
    return Math.max(0, Math.min(GOAWAY_NOTICE_MS, this.deadline - Date.now() - GOAWAY_NOTICE_MS));
  }

  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.http1.keys()) socket.destroy();
  }
}

/** GOAWAY on every h2 session, then stops accepting, lets in-flight requests finish, and cuts what is left at `deadline`. */
async function drain(server: Http2SecureServer, connections: Connections, deadline: number): Promise<void> {
  connections.drain(deadline);
  // server.close() closes every h2 session at once: only after the GOAWAYs' notice.
  await new Promise((resolve) => setTimeout(resolve, connections.noticeMs()));
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  const timer = setTimeout(() => connections.destroyAll(), Math.max(0, deadline - Date.now()));
  await done;
  clearTimeout(timer);
}

/**
 * The phase admission decides in: the phase in force once known; before that one that denies nothing some phase
 * allows, so a replica that has not read the ConfigMap yet never denies a workload write the phase may allow.
 */
function admissionPhase(phase: WebhookPhase, initial: Config['phase']['initial']): () => Phase {
  const before = phaseBeforeKnown(initial);
  return () => (phase.known() ? phase.current() : before);
}

/**
 * The h2 stream door: answers kube-apiserver's h2 admission POSTs on the stream itself (node:http2's core API),
 * before node builds the compat request and response for them: `serveAdmissionStream` sends each answer in one
 * write where the compat response needs two. Every other stream (probes, scrapes, a caller `admits` refuses, an
 * `expect` header) goes to the compat layer and the request door. Call after the 'request' listener is on: node adds
 * its compat 'stream' listener then, and this one takes its place.
 */
function serveAdmissionStreams(
  server: Http2SecureServer,
  admission: AdmissionHandler,
  admits: (path: string, socket: CallerSocket | undefined) => boolean,
): void {
  type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;
  const compat = server.listeners('stream') as StreamListener[];
  if (compat.length !== 1) return; // not the layout this relies on: the compat path serves everything
  const toCompat = compat[0] as StreamListener;
  server.removeListener('stream', toCompat);
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    const path = headers[':path'];
    const webhook = headers[':method'] === 'POST' ? admissionWebhookFor(path) : undefined;
    if (
      webhook !== undefined &&
      headers.expect === undefined &&
      admits(pathOf(path), stream.session?.socket as CallerSocket | undefined)
    ) {
      serveAdmissionStream(admission, webhook, stream, headers);
      return;
    }
    toCompat.call(server, stream, headers, ...rest);
  });
}

/**
 * Serves the admission webhook over TLS until shut down, h2 and HTTP/1.1 on one port (ALPN): kube-apiserver
 * negotiates h2 and multiplexes its calls over one connection instead of opening more as calls slow down.
 * Certificate hot reload, /healthz, /readyz and /metrics. Two doors, each checking the caller once: requests
 * (HTTP/1.1 and h2 compat) go to `webhookRoutes`; kube-apiserver's h2 admission streams to `serveAdmissionStream`,
 * with the same admission handler. Signals and the phase are its caller's (see `untilSignal`).
 */
export async function runWebhook(options: RunWebhookOptions): Promise<WebhookHandle> {
  const { config, metrics, phase } = options;
  const logger = options.logger.child({ component: 'webhook' });
  metrics.buildInfo.set({ version: options.version ?? 'unknown' }, 1);

  let draining = false;
  const server = http2.createSecureServer({
    allowHTTP1: true,
    minVersion: 'TLSv1.2',
    ...clientAuthServerOptions(config.webhook.clientCaFile),
  });
  // HTTP/1.1 connections take node:http's timeouts from these fields (read per connection).
  Object.assign(server, {
    keepAliveTimeout: KEEP_ALIVE_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
  });
  const connections = new Connections(server);
  // node:http sets TCP_NODELAY on its sockets, node:http2 does not: without it a small answer can wait on Nagle's
  // algorithm for the client's delayed ACK (tens of ms) on the one connection kube-apiserver keeps.
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  const certs = new CertificateReloader({
    certFile: config.webhook.certFile,
    keyFile: config.webhook.keyFile,
    clientCaFile: config.webhook.clientCaFile,
    pollSeconds: config.webhook.certPollSeconds,
    logger,
    metrics,
    apply: (pair) => server.setSecureContext(secureContextOptions(pair)),
  });
  const admits = callerCheck({
    enabled: config.webhook.clientCaFile !== undefined,
    clientCas: () => certs.certificate()?.clientCas,
  });
  const refuse = refuseCaller({ metrics, logger });
  const readiness = (): Readiness => {
    const checks = { certificate: certs.loaded(), phase: phase.known(), draining };
    return { ready: checks.certificate && checks.phase && !draining, checks };
  };
  const admission = createAdmission({
    config,
    logger,
    metrics,
    phase: admissionPhase(phase, config.phase.initial),
    recordsBatchMs: RECORDS_BATCH_MS,
  });
  const routes = webhookRoutes({ admission: admission.answer, registry: metrics.registry, readiness });
  // The request door: HTTP/1.1 (allowHTTP1: node:http's own request and response) and h2 compat.
  server.on('request', (req, res) => {
    if (req.httpVersionMajor !== 2) connections.track(req.socket as TLSSocket, res);
    if (admits(pathOf(req.url), req.socket as CallerSocket)) routes(req, res);
    else refuse(req, res);
  });
  serveAdmissionStreams(server, admission.answer, admits);
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));

  await certs.start();
  const address = await listen(server, config.webhook.host, config.webhook.port);
  // Records still waiting are applied before the process's stdout is flushed on exit (an earlier 'exit' listener).
  const flushRecords = (): void => admission.flush();
  process.prependListener('exit', flushRecords);
  logger.info(
    { host: address.address, port: address.port, phase: phase.known() ? phase.current() : null },
    'webhook listening',
  );

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const forced = new AbortController();
  const shutdown = async (): Promise<void> => {
    const { shutdownDelaySeconds, shutdownTimeoutSeconds } = config.webhook;
    const deadline = Date.now() + shutdownTimeoutSeconds * 1000;
    draining = true;
    logger.info({ shutdownDelaySeconds, shutdownTimeoutSeconds }, 'webhook draining');
    await sleep(Math.min(shutdownDelaySeconds * 1000, Math.max(0, deadline - Date.now() - 1000)), forced.signal);
    await drain(server, connections, forced.signal.aborted ? Date.now() : deadline);
    flushRecords();
    process.off('exit', flushRecords);
    certs.stop();
    logger.info('webhook stopped');
  };
  const close = (): Promise<void> => {
    closing ??= shutdown().finally(resolveClosed);
    return closing;
  };
  const force = (): void => {
    logger.warn('closing all connections');
    forced.abort();
    connections.destroyAll();
  };

  return { server, address, phase, readiness, connections: () => connections.counts(), close, force, closed };
}
