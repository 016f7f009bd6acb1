import { X509Certificate } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';

export interface KeyPairPem {
  cert: Buffer;
  key: Buffer;
}

export interface LoadedCertificate extends KeyPairPem {
  notAfter: Date;
  subject: string;
}

export class TlsLoadError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TLS_LOAD', message, options);
  }
}

/** Checks that the pair makes a TLS context (the key matches the certificate) and reads the leaf's expiry. */
export function inspectKeyPair(pair: KeyPairPem): LoadedCertificate {
  let leaf: X509Certificate;
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
    leaf = new X509Certificate(pair.cert);
  } catch (err) {
    throw new TlsLoadError(`serving certificate and key are not usable: ${errorMessage(err)}`, { cause: err });
  }
  return { ...pair, notAfter: new Date(leaf.validTo), subject: leaf.subject };
}

export interface CertificateReloaderOptions {
  certFile: string;
  keyFile: string;
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
    let pair: KeyPairPem;
    try {
      const [cert, key] = await Promise.all([readFile(this.o.certFile), readFile(this.o.keyFile)]);
      pair = { cert, key };
    } catch (err) {
      this.fail(`cannot read: ${errorMessage(err)}`);
      return;
    }
    if (this.current && this.current.cert.equals(pair.cert) && this.current.key.equals(pair.key)) return;
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
      { certFile: this.o.certFile, subject: loaded.subject, notAfter: loaded.notAfter.toISOString(), first },
      'serving certificate loaded',
    );
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
