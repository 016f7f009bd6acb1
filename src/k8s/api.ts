import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type * as k8s from '@kubernetes/client-node';
import { AppError } from '../errors.js';
import { credentialsFromKubeConfig } from './credentials.js';
import type { KubeCredentials } from './credentials.js';

/** A non-2xx answer of the API server (or a watch ERROR event), with its status and the Status reason. */
export class KubeApiError extends AppError {
  readonly status: number;
  readonly reason: string | undefined;

  constructor(status: number, message: string, reason?: string) {
    super('ERR_K8S_API', message);
    this.status = status;
    this.reason = reason;
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
}

type Query = Record<string, string | number | boolean | undefined>;

const CREDENTIALS_TTL_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * A lean JSON client for the API server: credentials come from client-node's KubeConfig (files, in-cluster token,
 * exec plugins), transport is one keep-alive agent. It exists because the sync lists tens of thousands of objects
 * and needs full control of watches (client-node 1.x aborts every watch after 30 s and deserializes into models).
 */
export class KubeApi {
  private readonly server: URL;
  private credentials: { agent: https.Agent; headers: Record<string, string>; at: number } | undefined;

  private readonly source: KubeCredentials;

  /** From lean credentials (src/k8s/credentials.ts) or a client-node KubeConfig. */
  constructor(source: KubeCredentials | k8s.KubeConfig) {
    this.source = 'resolve' in source ? source : credentialsFromKubeConfig(source);
    this.server = new URL(this.source.server);
  }

  private async auth(): Promise<{ agent: https.Agent; headers: Record<string, string> }> {
    const now = Date.now();
    if (this.credentials && now - this.credentials.at < CREDENTIALS_TTL_MS) return this.credentials;
    const c = await this.source.resolve();
    const agent =
      this.credentials?.agent ??
      new https.Agent({
        keepAlive: true,
        maxSockets: 16,
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        ...(c.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
      });
    this.credentials = { agent, headers: c.headers, at: now };
    return this.credentials;
  }

  private url(path: string, query: Query = {}): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    return url;
  }

  private async open(
    method: string,
    url: URL,
    body?: unknown,
    contentType = 'application/json',
    signal?: AbortSignal,
    accept = 'application/json',
    idleTimeoutMs?: number,
  ): Promise<IncomingMessage> {
    const { agent, headers } = await this.auth();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent,
          signal,
          headers: {
            ...headers,
            accept,
            'user-agent': 'jobs-storage/0.1',
            ...(payload !== undefined
              ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        resolve,
      );
      req.on('error', reject);
      // An inactivity bound rather than AbortSignal.timeout: it ends with the request instead of holding a timer
      // and the request for its full length (which showed as tens of MB during the sync's initial list).
      if (idleTimeoutMs !== undefined) {
        req.setTimeout(idleTimeoutMs, () =>
          req.destroy(new KubeApiError(0, `no answer from the API server in ${idleTimeoutMs} ms`)),
        );
      }
      req.end(payload);
    });
  }

  /** One request; the parsed JSON answer, or a KubeApiError carrying the API's Status. */
  async request<T>(
    method: string,
    path: string,
    options: { query?: Query; body?: unknown; contentType?: string; accept?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    // Every request is bounded: a black-holed connection must not freeze a relist, a backfill or a Lease renewal.
    const res = await this.open(
      method,
      this.url(path, options.query),
      options.body,
      options.contentType,
      undefined,
      options.accept,
      options.timeoutMs ?? REQUEST_TIMEOUT_MS,
    );
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw toApiError(status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Pages of a collection (`limit` + `continue`); a page whose token expired (410) ends in a KubeApiError. */
  async *listPages<T>(path: string, query: Query & { limit: number }): AsyncGenerator<ListPage<T>> {
    let token: string | undefined;
    do {
      const page = await this.request<{
        apiVersion?: string;
        kind?: string;
        items?: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>('GET', path, { query: { ...query, continue: token } });
      token = page.metadata?.continue || undefined;
      const items = page.items ?? [];
      stampKind(items, page.apiVersion, page.kind);
      yield { items, resourceVersion: page.metadata?.resourceVersion ?? '' };
    } while (token);
  }

  /**
   * Streams watch events until the server ends the watch, `signal` aborts it (resolves) or an error occurs (rejects;
   * an in-stream ERROR such as 410 Gone becomes a KubeApiError with that status).
   */
  async watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let res: IncomingMessage;
    try {
      res = await this.open('GET', this.url(path, { ...query, watch: 1 }), undefined, undefined, signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if ((res.statusCode ?? 0) !== 200) throw toApiError(res.statusCode ?? 0, await readAll(res));
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      const fail = (err: unknown) => {
        res.destroy();
        reject(err);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.trim()) continue;
          let event: { type: string; object: unknown };
          try {
            event = JSON.parse(line) as { type: string; object: unknown };
          } catch {
            fail(new KubeApiError(0, 'watch stream sent a line that is not JSON'));
            return;
          }
          if (event.type === 'ERROR') {
            const s = event.object as { code?: number; message?: string; reason?: string };
            fail(new KubeApiError(s.code ?? 500, s.message ?? 'watch error', s.reason));
            return;
          }
          onEvent(event as WatchEvent<T>);
        }
      });
      res.on('end', resolve);
      res.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
      res.on('close', resolve);
    });
  }
}

/**
 * List items come without `apiVersion` and `kind` (watch events carry them); set them from the list
 * (`CronJobList` → `CronJob`) so that every object reaching a caller looks the same whichever way it came.
 */
function stampKind(items: unknown[], apiVersion: string | undefined, listKind: string | undefined): void {
  if (!apiVersion || !listKind?.endsWith('List')) return;
  const kind = listKind.slice(0, -'List'.length);
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue;
    const obj = item as { apiVersion?: string; kind?: string };
    obj.apiVersion ??= apiVersion;
    obj.kind ??= kind;
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function toApiError(status: number, text: string): KubeApiError {
  try {
    const s = JSON.parse(text) as { message?: string; reason?: string };
    return new KubeApiError(status, s.message ?? `HTTP ${status}`, s.reason);
  } catch {
    return new KubeApiError(status, `HTTP ${status}: ${text.slice(0, 200)}`);
  }
}
