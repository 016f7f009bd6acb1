import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { phaseBeforeKnown } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { PhaseView } from '../phase/source.js';
import { createAdmissionHandler } from './admission.js';
import { createApp } from './app.js';
import type { Readiness } from './app.js';
import { admissionFastPath } from './http.js';
import { CertificateReloader, callerGate, clientAuthServerOptions, secureContextOptions } from './tls.js';

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

export interface WebhookHandle {
  server: https.Server;
  address: AddressInfo;
  phase: WebhookPhase;
  readiness(): Readiness;
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

function listen(server: https.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops accepting, lets in-flight requests finish, and cuts what is left at `deadline`. */
async function drain(server: https.Server, deadline: number): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), Math.max(0, deadline - Date.now()));
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
 * Serves the admission webhook over HTTPS until shut down: certificate hot reload, /healthz, /readyz and /metrics.
 * The two admission POST paths bypass express (see `admissionFastPath`). The phase is its caller's to start and stop.
 */
export async function runWebhook(options: RunWebhookOptions): Promise<WebhookHandle> {
  const { config, metrics, phase } = options;
  const logger = options.logger.child({ component: 'webhook' });
  metrics.buildInfo.set({ version: options.version ?? 'unknown' }, 1);

  let draining = false;
  const server = https.createServer({
    minVersion: 'TLSv1.2',
    keepAliveTimeout: KEEP_ALIVE_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    ...clientAuthServerOptions(config.webhook.clientCaFile),
  });
  const certs = new CertificateReloader({
    certFile: config.webhook.certFile,
    keyFile: config.webhook.keyFile,
    clientCaFile: config.webhook.clientCaFile,
    pollSeconds: config.webhook.certPollSeconds,
    logger,
    metrics,
    apply: (pair) => server.setSecureContext(secureContextOptions(pair)),
  });
  const unauthenticated = callerGate({ enabled: config.webhook.clientCaFile !== undefined, metrics, logger });
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
  server.on('request', (req, res) => {
    if (!unauthenticated(req, res) && !fast(req, res)) app(req, res);
  });
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
    await drain(server, deadline);
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
      server.closeAllConnections();
      return;
    }
    logger.info({ signal }, 'shutdown requested');
    void close();
  };
  for (const s of signals) process.on(s, onSignal);
  void closed.then(() => {
    for (const s of signals) process.off(s, onSignal);
  });

  return { server, address, phase, readiness, close, closed };
}
