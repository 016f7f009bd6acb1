import http2 from 'node:http2';
import type { Http2SecureServer, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { phaseBeforeKnown } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { PhaseView } from '../phase/source.js';
import { createAdmissionHandler } from './admission.js';
import type { AdmissionHandler } from './admission.js';
import { createApp, createPlainRoutes } from './app.js';
import type { Readiness } from './app.js';
import { admissionFastPath, admissionWebhookFor, serveAdmissionStream } from './http.js';
import {
  CertificateReloader,
  callerAuthenticated,
  callerGate,
  clientAuthServerOptions,
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
  /** Signals that start a graceful shutdown; `[]` leaves signals to the caller. Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
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
  /** Resolves once a shutdown (from `close` or a signal) has finished. */
  closed: Promise<void>;
}

/** The apiserver reuses connections; idle ones must outlive its idle timeout so a request never meets a closing socket. */
const KEEP_ALIVE_MS = 120_000;
/** Far above the ≤ 3 s the apiserver waits for an answer; they only bound stuck or slow clients. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
 * The server's live connections: h2 sessions and HTTP/1.1 sockets with their in-flight request counts, so a drain
 * can close idle HTTP/1.1 connections at once, the rest after their last answer, and send GOAWAY on every h2 session.
 */
class Connections {
  readonly sessions = new Set<ServerHttp2Session>();
  readonly http1 = new Map<TLSSocket, number>();
  opened = { h2: 0, http1: 0 };
  draining = false;

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
      if (this.draining) session.close();
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

  /** GOAWAY on every h2 session (in-flight streams finish) and closes idle HTTP/1.1 connections. */
  drain(): void {
    this.draining = true;
    for (const session of this.sessions) session.close();
    for (const [socket, inFlight] of this.http1) if (inFlight === 0) socket.end();
  }

  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.http1.keys()) socket.destroy();
  }
}

/** Stops accepting, lets in-flight requests finish, and cuts what is left at `deadline`. */
async function drain(server: Http2SecureServer, connections: Connections, deadline: number): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  connections.drain();
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
 * Answers kube-apiserver's h2 admission POSTs on the stream itself (node:http2's core API), before node builds the
 * compat request and response for them: `serveAdmissionStream` sends each answer in one write where the compat
 * response needs two. Every other stream (probes, scrapes, a caller the gate refuses, an `expect` header) goes to
 * the compat layer as before, so the 401 gate and the plain routes see it unchanged. With `clientCas` (caller
 * authentication on) a stream takes this path only when `callerAuthenticated` holds for its session's socket, the
 * same rule as the gate's. Call after the 'request' listener is on: node adds its compat 'stream' listener then,
 * and this one takes its place.
 */
function serveAdmissionStreams(
  server: Http2SecureServer,
  admission: AdmissionHandler,
  clientCas: (() => readonly X509Certificate[] | undefined) | undefined,
): void {
  type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;
  const compat = server.listeners('stream') as StreamListener[];
  if (compat.length !== 1) return; // not the layout this relies on: the compat path serves everything
  const toCompat = compat[0] as StreamListener;
  server.removeListener('stream', toCompat);
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    const webhook = headers[':method'] === 'POST' ? admissionWebhookFor(headers[':path']) : undefined;
    if (
      webhook !== undefined &&
      headers.expect === undefined &&
      (clientCas === undefined || callerAuthenticated(stream.session?.socket as CallerSocket | undefined, clientCas()))
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
 * Certificate hot reload, /healthz, /readyz and /metrics. The two admission POST paths bypass express (see
 * `admissionFastPath`); other h2 requests get the same routes without express (`createPlainRoutes`). The phase is its
 * caller's to start and stop.
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
  const gated = config.webhook.clientCaFile !== undefined;
  const clientCas = (): readonly X509Certificate[] | undefined => certs.certificate()?.clientCas;
  const unauthenticated = callerGate({ enabled: gated, clientCas, metrics, logger });
  const readiness = (): Readiness => {
    const checks = { certificate: certs.loaded(), phase: phase.known(), draining };
    return { ready: checks.certificate && checks.phase && !draining, checks };
  };
  const admission = createAdmissionHandler({
    config,
    logger,
    metrics,
    phase: admissionPhase(phase, config.phase.initial),
  });
  const fast = admissionFastPath(admission);
  const app = createApp({ admission, registry: metrics.registry, readiness });
  const plain = createPlainRoutes({ registry: metrics.registry, readiness });
  server.on('request', (req, res) => {
    if (req.httpVersionMajor === 2) {
      if (!unauthenticated(req, res) && !fast(req, res)) plain(req, res);
      return;
    }
    // allowHTTP1: node:http's own request and response objects.
    const h1req = req as unknown as IncomingMessage;
    const h1res = res as unknown as ServerResponse;
    connections.track(h1req.socket as TLSSocket, h1res);
    if (!unauthenticated(h1req, h1res) && !fast(h1req, h1res)) app(h1req, h1res);
  });
  serveAdmissionStreams(server, admission, gated ? clientCas : undefined);
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));

  await certs.start();
  const address = await listen(server, config.webhook.host, config.webhook.port);
  logger.info(
    { host: address.address, port: address.port, phase: phase.known() ? phase.current() : null },
    'webhook listening',
  );

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    const { shutdownDelaySeconds, shutdownTimeoutSeconds } = config.webhook;
    const deadline = Date.now() + shutdownTimeoutSeconds * 1000;
    draining = true;
    logger.info({ shutdownDelaySeconds, shutdownTimeoutSeconds }, 'webhook draining');
    await sleep(Math.min(shutdownDelaySeconds * 1000, Math.max(0, deadline - Date.now() - 1000)));
    await drain(server, connections, deadline);
    certs.stop();
    logger.info('webhook stopped');
  };
  const close = (): Promise<void> => {
    closing ??= shutdown().finally(resolveClosed);
    return closing;
  };

  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      logger.warn({ signal }, 'second signal, closing all connections');
      connections.destroyAll();
      return;
    }
    logger.info({ signal }, 'shutdown requested');
    void close();
  };
  for (const s of signals) process.on(s, onSignal);
  void closed.then(() => {
    for (const s of signals) process.off(s, onSignal);
  });

  return { server, address, phase, readiness, connections: () => connections.counts(), close, closed };
}
