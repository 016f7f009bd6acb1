import { X509Certificate, constants as cryptoConstants } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { SecureServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import type { WebhookRequest, WebhookResponse } from './http.js';

export interface KeyPairPem {
  cert: Buffer;
  key: Buffer;
}

export interface LoadedCertificate extends KeyPairPem {
  notAfter: Date;
  subject: string;
  /** PEM bundle of the CA that signs callers' client certificates, when caller authentication is on. */
  clientCa?: Buffer;
  /** The certificates of `clientCa`, parsed once per load: what `callerAuthenticated` checks a caller's leaf against. */
  clientCas?: readonly X509Certificate[];
}

export class TlsLoadError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TLS_LOAD', message, options);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle (`X509Certificate` alone reads only the first). */
export function parseCertificateBundle(pem: Buffer): X509Certificate[] {
  return (pem.toString('latin1').match(PEM_CERTIFICATE) ?? []).map((block) => new X509Certificate(block));
}

/** Checks that the pair makes a TLS context (the key matches the certificate) and reads the leaf's expiry. */
export function inspectKeyPair(pair: KeyPairPem & { clientCa?: Buffer }): LoadedCertificate {
  let leaf: X509Certificate;
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
    leaf = new X509Certificate(pair.cert);
  } catch (err) {
    throw new TlsLoadError(`serving certificate and key are not usable: ${errorMessage(err)}`, { cause: err });
  }
  const loaded: LoadedCertificate = { ...pair, notAfter: new Date(leaf.validTo), subject: leaf.subject };
  if (pair.clientCa !== undefined) {
    try {
      const clientCas = parseCertificateBundle(pair.clientCa);
      if (clientCas.length === 0) throw new Error('no PEM certificate in it');
      createSecureContext({ ca: pair.clientCa });
      loaded.clientCas = clientCas;
    } catch (err) {
      throw new TlsLoadError(`client CA bundle is not usable: ${errorMessage(err)}`, { cause: err });
    }
  }
  return loaded;
}

/**
 * No TLS session resumption while callers are authenticated. A resumed TLS 1.3 session runs no certificate exchange,
 * and node (seen on 20.20 and 22) then reports `authorized === true` with no `authorizationError` and no peer
 * certificate, even when the session began without a certificate and was refused. `SSL_OP_NO_TICKET` stops stateless
 * tickets (TLS 1.2 and 1.3); what OpenSSL issues instead are stateful session ids, which node's contexts never store
 * (`SSL_SESS_CACHE_NO_INTERNAL`) unless the server listens to 'resumeSession', which this one does not. A
 * `sessionTimeout` alone does not stop a TLS 1.3 resumption. `callerAuthenticated` refuses such a session anyway.
 */
const NO_RESUMPTION = { secureOptions: cryptoConstants.SSL_OP_NO_TICKET } as const;

/**
 * What `server.setSecureContext` gets for a loaded certificate: the pair, and the client CA when there is one, then
 * without session resumption. `setSecureContext` resets the server's `secureOptions` to what it is given, so they
 * are given on every load, not only when the server is made.
 */
export function secureContextOptions(pair: LoadedCertificate): SecureContextOptions {
  return {
    cert: pair.cert,
    key: pair.key,
    minVersion: 'TLSv1.2',
    ...(pair.clientCa !== undefined ? { ca: pair.clientCa, ...NO_RESUMPTION } : {}),
  };
}

/**
 * TLS server options (HTTP/1.1 and h2 alike) for caller authentication: ask every client for a certificate but finish the handshake
 * without one, so kubelet's probes still reach /healthz and /readyz; `callerCheck` refuses the rest. No session
 * resumption (see `NO_RESUMPTION`).
 */
export function clientAuthServerOptions(
  clientCaFile: string | undefined,
): Pick<SecureServerOptions, 'requestCert' | 'rejectUnauthorized' | 'secureOptions'> {
  return clientCaFile === undefined ? {} : { requestCert: true, rejectUnauthorized: false, ...NO_RESUMPTION };
}

/** What `callerAuthenticated` reads of a connection: a `TLSSocket`, or node:http2's proxy for one. */
export type CallerSocket = Pick<TLSSocket, 'authorized' | 'getPeerX509Certificate'>;

/**
 * The one rule for "this connection is kube-apiserver", used by every door (HTTP/1.1, h2 compat, h2 streams): the
 * client presented a certificate on this connection, OpenSSL verified it against the client CA (`authorized`), and
 * its leaf is within its validity and issued and signed by a certificate of `clientCas` (the bundle loaded now).
 * `authorized` alone is not enough: a resumed TLS 1.3 session without a certificate reports `authorized === true`
 * with no peer certificate on node 20.20 and 22 (see `NO_RESUMPTION`), and a connection opened before the client CA
 * was replaced was verified against the old one. The bundle must hold the CA that signs the leaf itself.
 */
export function callerAuthenticated(
  socket: CallerSocket | undefined,
  clientCas: readonly X509Certificate[] | undefined,
): boolean {
  if (socket === undefined || clientCas === undefined || clientCas.length === 0) return false;
  const now = Date.now();
  const known = authenticated.get(socket);
  if (known !== undefined && known.clientCas === clientCas && now <= known.until) return true;
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined || socket.authorized !== true) return false;
  const until = Date.parse(leaf.validTo);
  if (!(Date.parse(leaf.validFrom) <= now && now <= until)) return false;
  if (!signedByBundle(leaf, clientCas)) return false;
  authenticated.set(socket, { clientCas, until });
  return true;
}

/**
 * Connections already found to be kube-apiserver's, with the bundle they were checked against and the end of their
 * leaf's validity: a connection's certificate does not change after its handshake, so the rule runs once per
 * connection (h2 session, HTTP/1.1 socket), not once per review. A new bundle or an expired leaf checks again.
 */
const authenticated = new WeakMap<object, { clientCas: readonly X509Certificate[]; until: number }>();

/** Leaves (by SHA-256 of their DER) already found signed by a bundle; a new bundle starts empty. */
const signedLeaves = new WeakMap<readonly X509Certificate[], Set<string>>();
/** Only leaves OpenSSL verified against the bundle get here: kube-apiserver's one or two, so the cap never bites. */
const MAX_SIGNED_LEAVES = 64;

/**
 * Whether a certificate of `clientCas` issued `leaf` (`leaf.checkIssued(ca)`: names and key identifiers) and its
 * key signed it. The signature check (about 60 µs for P-256, most of the rule's cost) runs once per leaf and bundle,
 * not once per review.
 */
function signedByBundle(leaf: X509Certificate, clientCas: readonly X509Certificate[]): boolean {
  let signed = signedLeaves.get(clientCas);
  if (signed === undefined) {
    signed = new Set();
    signedLeaves.set(clientCas, signed);
  }
  const fingerprint = leaf.fingerprint256;
  if (signed.has(fingerprint)) return clientCas.some((ca) => leaf.checkIssued(ca));
  if (!clientCas.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))) return false;
  if (signed.size >= MAX_SIGNED_LEAVES) signed.clear();
  signed.add(fingerprint);
  return true;
}

/**
 * Paths any client may use without a client certificate: kubelet probes and the Prometheus scrape. /metrics holds
 * counts only (bounded label sets, no request data); a NetworkPolicy limits who reaches the port at all.
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export interface CallerCheckOptions {
  /** Off when no client CA is configured: every caller is believed. */
  enabled: boolean;
  /** The client CA certificates in force (they reload with the serving pair). */
  clientCas: () => readonly X509Certificate[] | undefined;
}

/**
 * The webhook's one 401 predicate, for every door: a request to `path` on `socket` may pass when caller
 * authentication is off, when the path is open (`OPEN_PATHS`), or when `callerAuthenticated` holds for its connection
 * (over h2 the session's TLS socket, so the rule is the same for both protocols).
 */
export function callerCheck(options: CallerCheckOptions): (path: string, socket: CallerSocket | undefined) => boolean {
  if (!options.enabled) return () => true;
  const { clientCas } = options;
  return (path, socket) => OPEN_PATHS.has(path) || callerAuthenticated(socket, clientCas());
}

/**
 * The answer to a request `callerCheck` refused: 401 with a JSON message, counted by reason (no certificate, or one
 * the client CA did not sign) and logged at debug.
 */
export function refuseCaller(options: {
  metrics: WebhookMetrics;
  logger: Logger;
}): (req: WebhookRequest & { socket: Socket }, res: WebhookResponse) => void {
  const { metrics, logger } = options;
  return (req, res) => {
    const socket = req.socket as TLSSocket;
    const presented = socket.getPeerX509Certificate() !== undefined;
    const reason = presented ? 'untrusted_certificate' : 'no_certificate';
    metrics.admissionUnauthenticated.inc({ reason });
    logger.debug(
      {
        reason,
        remote: socket.remoteAddress,
        path: (req.url ?? '/').slice(0, 200),
        err: String(socket.authorizationError ?? ''),
      },
      'caller not authenticated',
    );
    req.resume();
    const body = JSON.stringify({ message: 'a client certificate signed by the configured client CA is required' });
    res.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

export interface CertificateReloaderOptions {
  certFile: string;
  keyFile: string;
  /** Client CA bundle to read with the pair (caller authentication); reloaded with it. */
  clientCaFile?: string | undefined;
  pollSeconds: number;
  logger: Logger;
  metrics: WebhookMetrics;
  /** Called with each new, validated pair (e.g. `server.setSecureContext`). */
  apply: (pair: LoadedCertificate) => void;
}

/** fs events come in bursts while a Secret volume swaps its `..data` symlink; read once the burst is over. */
const DEBOUNCE_MS = 200;

/**
 * Keeps the serving certificate current without a restart: a directory watch for speed plus a poll, because watches
 * miss Secret symlink swaps (controller-runtime certwatcher's lesson). A pair that cannot be read or does not match
 * keeps the previous one in service.
 */
export class CertificateReloader {
  private current: LoadedCertificate | undefined;
  private readonly watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(private readonly o: CertificateReloaderOptions) {}

  loaded(): boolean {
    return this.current !== undefined;
  }

  certificate(): LoadedCertificate | undefined {
    return this.current;
  }

  /** Loads once (errors are logged and retried by the poll), then watches. */
  async start(): Promise<void> {
    await this.reload();
    for (const dir of new Set([dirname(this.o.certFile), dirname(this.o.keyFile)])) this.watchDir(dir);
    if (this.o.pollSeconds > 0) {
      this.poll = setInterval(() => void this.reload(), this.o.pollSeconds * 1000);
      this.poll.unref();
    }
  }

  stop(): void {
    for (const w of this.watchers.splice(0)) w.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }

  /** Reads both files and applies them if they changed; concurrent calls share one read. */
  reload(): Promise<void> {
    this.reloading ??= this.readAndApply().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private watchDir(dir: string): void {
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), DEBOUNCE_MS);
        this.debounce.unref();
      });
      watcher.on('error', (err) =>
        this.o.logger.warn({ dir, err: errorMessage(err) }, 'certificate directory watch failed, polling only'),
      );
      this.watchers.push(watcher);
    } catch (err) {
      this.o.logger.warn({ dir, err: errorMessage(err) }, 'certificate directory watch failed, polling only');
    }
  }

  private async readAndApply(): Promise<void> {
    let pair: KeyPairPem & { clientCa?: Buffer };
    try {
      const { clientCaFile } = this.o;
      const [cert, key, clientCa] = await Promise.all([
        readFile(this.o.certFile),
        readFile(this.o.keyFile),
        clientCaFile === undefined ? undefined : readFile(clientCaFile),
      ]);
      pair = clientCa === undefined ? { cert, key } : { cert, key, clientCa };
    } catch (err) {
      this.fail(`cannot read: ${errorMessage(err)}`);
      return;
    }
    if (this.unchanged(pair)) return;
    let loaded: LoadedCertificate;
    try {
      loaded = inspectKeyPair(pair);
      this.o.apply(loaded);
    } catch (err) {
      this.fail(errorMessage(err));
      return;
    }
    const first = this.current === undefined;
    this.current = loaded;
    this.lastError = undefined;
    this.o.metrics.certExpiry.set(Math.floor(loaded.notAfter.getTime() / 1000));
    this.o.metrics.certReloads.inc({ result: 'success' });
    this.o.logger.info(
      {
        certFile: this.o.certFile,
        subject: loaded.subject,
        notAfter: loaded.notAfter.toISOString(),
        clientCaFile: this.o.clientCaFile,
        first,
      },
      'serving certificate loaded',
    );
  }

  private unchanged(pair: KeyPairPem & { clientCa?: Buffer }): boolean {
    const c = this.current;
    if (c === undefined || !c.cert.equals(pair.cert) || !c.key.equals(pair.key)) return false;
    if (c.clientCa === undefined || pair.clientCa === undefined) return c.clientCa === pair.clientCa;
    return c.clientCa.equals(pair.clientCa);
  }

  /** Counted every time; logged only when the error changes, so a missing file does not log every poll. */
  private fail(message: string): void {
    this.o.metrics.certReloads.inc({ result: 'error' });
    if (message === this.lastError) return;
    this.lastError = message;
    const level = this.current ? 'warn' : 'error';
    this.o.logger[level](
      { certFile: this.o.certFile, keyFile: this.o.keyFile, err: message, keepsPrevious: this.current !== undefined },
      'serving certificate not loaded',
    );
  }
}
