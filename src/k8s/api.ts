import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type * as k8s from '@kubernetes/client-node';
import { credentialsFromKubeConfig } from './credentials.js';
import type { KubeCredentials } from './credentials.js';
import { KubeApiError } from './errors.js';
import { continueTokenOf, scanPage } from './list-scan.js';
import type { ScannedPage } from './list-scan.js';

export { KubeApiError } from './errors.js';

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
}

/** A list page whose items are parsed one at a time, as they are iterated (`listPages(…, 'lazy')`). */
export interface LazyListPage<T> {
  items: Iterable<T>;
  resourceVersion: string;
}

type Query = Record<string, string | number | boolean | undefined>;

/** The options of `KubeApi.request`. */
export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** The body already serialised as JSON, sent as it is instead of `body` (a caller that builds the text itself). */
  json?: string;
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
  /** 'json' (default): the answer parsed; 'discard': a 2xx answer's body read and dropped, resolving to undefined. */
  answer?: 'json' | 'discard';
}

/** A list page in flight: its `continue` token comes first (as soon as it has arrived), then the parsed page. */
interface PendingPage<T> {
  continueToken: Promise<string | undefined>;
  page: Promise<ScannedPage<T>>;
  abort: () => void;
}

/** One HTTP request's options; the content type and accept default to JSON. */
interface OpenOptions {
  body?: unknown;
  /** The body already serialised as JSON, sent as it is (instead of `body`). */
  json?: string;
  contentType?: string;
  signal?: AbortSignal;
  accept?: string;
  /** Ends the request with a KubeApiError after this long without any data. */
  idleTimeoutMs?: number;
}

const CREDENTIALS_TTL_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * A lean JSON client for the API server: credentials come from client-node's KubeConfig (files, in-cluster token,
 * exec plugins), transport is one keep-alive agent. It exists because the sync lists tens of thousands of objects
 * and needs full control of pagination and watches; client-node deserializes every item into model classes and
 * cannot request the next page early. Why, and what would change it: docs/adr/0001-lean-api-client.md.
 */
export class KubeApi {
  private readonly server: URL;
  private credentials: { agent: https.Agent; headers: Record<string, string | string[]>; at: number } | undefined;

  private readonly source: KubeCredentials;

  /** From lean credentials (src/k8s/credentials.ts) or a client-node KubeConfig. */
  constructor(source: KubeCredentials | k8s.KubeConfig) {
    this.source = 'resolve' in source ? source : credentialsFromKubeConfig(source);
    this.server = new URL(this.source.server);
  }

  private async auth(): Promise<{ agent: https.Agent; headers: Record<string, string | string[]> }> {
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

  private async open(method: string, url: URL, options: OpenOptions = {}): Promise<IncomingMessage> {
    const {
      body,
      json,
      contentType = 'application/json',
      signal,
      accept = 'application/json',
      idleTimeoutMs,
    } = options;
    const { agent, headers } = await this.auth();
    const payload = json ?? (body === undefined ? undefined : JSON.stringify(body));
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

  /**
   * One request; the parsed JSON answer, or a KubeApiError carrying the API's Status. With `answer: 'discard'` a
   * successful answer's body is read to its end and dropped, unparsed, and the request resolves to undefined (for a
   * caller that needs only the status, e.g. the 201 of a create, which echoes the whole object); an error's body is
   * still parsed into the KubeApiError.
   */
  request(method: string, path: string, options: RequestOptions & { answer: 'discard' }): Promise<undefined>;
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T | undefined> {
    // Every request is bounded: a black-holed connection must not freeze a relist, a backfill or a Lease renewal.
    const res = await this.open(method, this.url(path, options.query), {
      body: options.body,
      ...(options.json === undefined ? {} : { json: options.json }),
      contentType: options.contentType,
      accept: options.accept,
      idleTimeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
    });
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300 && options.answer === 'discard') {
      await drain(res);
      return undefined;
    }
    const text = await readAll(res);
    if (status < 200 || status >= 300) throw toApiError(status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * Pages of a collection (`limit` + `continue`); a page whose token expired (410) ends in a KubeApiError.
   *
   * The next page is requested as soon as this page's `continue` token has arrived — the API server writes list
   * metadata before the items — so the server prepares it while this page's items are still arriving and being
   * parsed. At most two pages of a list are in flight.
   *
   * A page is kept as its body's bytes (outside the JavaScript heap) and the offsets of its items. With `'lazy'`, each
   * item is parsed when the caller's iteration reaches it, so a caller that keeps only a little of each item never
   * has a whole page of parsed objects alive: at tens of thousands of objects, those pages (alive across the awaits
   * of a list) were promoted to the old generation and were most of what a relist left behind. Without it, the
   * items come parsed in an array, as before.
   */
  listPages<T>(path: string, query: Query & { limit: number }): AsyncGenerator<ListPage<T>>;
  listPages<T>(path: string, query: Query & { limit: number }, items: 'lazy'): AsyncGenerator<LazyListPage<T>>;
  async *listPages<T>(
    path: string,
    query: Query & { limit: number },
    items: 'array' | 'lazy' = 'array',
  ): AsyncGenerator<ListPage<T> | LazyListPage<T>> {
    let current: PendingPage<T> = this.startListPage<T>(path, query, undefined);
    let following: PendingPage<T> | undefined;
    try {
      for (;;) {
        const early: string | undefined = await current.continueToken;
        following = early ? this.startListPage<T>(path, query, early) : undefined;
        let page: ScannedPage<T> | undefined = await current.page;
        if (page.continueToken !== early) {
          // The early read disagreed with the parsed page (never seen): follow the parsed token.
          following?.abort();
          following = page.continueToken ? this.startListPage<T>(path, query, page.continueToken) : undefined;
        }
        const out = { items: items === 'lazy' ? page.items : [...page.items], resourceVersion: page.resourceVersion };
        // Nothing here holds the page past the yield (the pending page that resolved to it is replaced before the
        // next one is awaited): the caller decides how long its items live.
        page = undefined;
        yield out;
        if (!following) return;
        current = following;
        following = undefined;
      }
    } finally {
      following?.abort();
    }
  }

  private startListPage<T>(path: string, query: Query, token: string | undefined): PendingPage<T> {
    const abort = new AbortController();
    let announce: (token: string | undefined) => void = () => undefined;
    const continueToken = new Promise<string | undefined>((resolve) => (announce = resolve));
    const page = (async (): Promise<ScannedPage<T>> => {
      const res = await this.open('GET', this.url(path, { ...query, continue: token }), {
        signal: abort.signal,
        idleTimeoutMs: REQUEST_TIMEOUT_MS,
      });
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) throw toApiError(status, await readAll(res));
      const body = await readBody(res, (head) => {
        const found = continueTokenOf(head);
        if (found.known) announce(found.token);
        return !found.known;
      });
      return scanPage<T>(body);
    })();
    // Whoever awaits the page sees its failure; the token then settles as "unknown" (the page decides).
    page.then(
      (p) => announce(p.continueToken),
      () => announce(undefined),
    );
    return { continueToken, page, abort: () => abort.abort() };
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
      res = await this.open('GET', this.url(path, { ...query, watch: 1 }), { signal });
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
 * The whole body as text. `onHead`, if given, sees the text received so far after each chunk until it returns
 * false (or 64 KiB have arrived), for what the start of a body says before the rest is in.
 */
async function readAll(res: IncomingMessage, onHead?: (head: string) => boolean): Promise<string> {
  return (await readBody(res, onHead)).toString('utf8');
}

/** Reads the body to its end and keeps nothing of it (the socket goes back to the agent's pool once it ends). */
function drain(res: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    res.on('end', resolve);
    res.on('error', reject);
    res.resume();
  });
}

/**
 * The whole body as bytes, in one ArrayBuffer of its own; `onHead` as for `readAll`.
 *
 * Each chunk is copied into the body as it arrives and not kept: the chunks of a list page (tens of them, each its own
 * ArrayBuffer) used to live in an array until the page's end, long enough at a few MB per page to be promoted, and
 * then freed only by the next full collection — tens of MB of RSS through an import's list (docs/benchmarks.md,
 * Import: memory). A chunk now dies young. The body grows by doubling with `ArrayBuffer.transfer`, which gives the old
 * memory back at once, and is cut to its length at the end (so a reader can give it back in turn, `PageItems`).
 */
function readBody(res: IncomingMessage, onHead?: (head: string) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const announced = Number(res.headers['content-length']);
    let body = new ArrayBuffer(
      Number.isSafeInteger(announced) && announced > 0 ? Math.min(announced, BODY_ANNOUNCED_MAX) : BODY_FIRST_BYTES,
    );
    let received = 0;
    let watching = onHead !== undefined;
    res.on('data', (c: Buffer) => {
      if (received + c.length > body.byteLength)
        body = body.transfer(Math.max(received + c.length, 2 * body.byteLength));
      new Uint8Array(body, received, c.length).set(c);
      received += c.length;
      if (watching && onHead) {
        watching = received < HEAD_LIMIT && onHead(Buffer.from(body, 0, received).toString('utf8'));
      }
    });
    res.on('end', () => resolve(Buffer.from(received === body.byteLength ? body : body.transfer(received))));
    res.on('error', reject);
  });
}

/** A body of unannounced length starts at this size and doubles as it needs. */
const BODY_FIRST_BYTES = 16 * 1024;
/** At most this much is set aside up front for a body's announced length; a longer one grows as it arrives. */
const BODY_ANNOUNCED_MAX = 16 * 1024 * 1024;
const HEAD_LIMIT = 64 * 1024;
function toApiError(status: number, text: string): KubeApiError {
  try {
    const s = JSON.parse(text) as { message?: string; reason?: string };
    return new KubeApiError(status, s.message ?? `HTTP ${status}`, s.reason);
  } catch {
    return new KubeApiError(status, `HTTP ${status}: ${text.slice(0, 200)}`);
  }
}
