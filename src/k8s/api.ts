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

  constructor(status: number, message: string, reason?: string, cause?: unknown) {
    super('ERR_K8S_API', message, cause === undefined ? undefined : { cause });
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

interface ParsedPage<T> {
  items: PageItems<T>;
  resourceVersion: string;
  continueToken: string | undefined;
}

/** A list page in flight: its `continue` token comes first (as soon as it has arrived), then the parsed page. */
interface PendingPage<T> {
  continueToken: Promise<string | undefined>;
  page: Promise<ParsedPage<T>>;
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
        let page: ParsedPage<T> | undefined = await current.page;
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
    const page = (async (): Promise<ParsedPage<T>> => {
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
      const list = scanList(body);
      const fields = list.fields as {
        apiVersion?: string;
        kind?: string;
        metadata?: { resourceVersion?: string; continue?: string };
      };
      const stamp = kindStamp(fields.apiVersion, fields.kind);
      return {
        items: new PageItems<T>(body, list.items, stamp),
        resourceVersion: fields.metadata?.resourceVersion ?? '',
        continueToken: fields.metadata?.continue || undefined,
      };
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
 * List items come without `apiVersion` and `kind` (watch events carry them); set them from the list
 * (`CronJobList` → `CronJob`) so that every object reaching a caller looks the same whichever way it came.
 */
function kindStamp(apiVersion: string | undefined, listKind: string | undefined): (item: unknown) => void {
  if (typeof apiVersion !== 'string' || !apiVersion || typeof listKind !== 'string' || !listKind.endsWith('List'))
    return () => undefined;
  const kind = listKind.slice(0, -'List'.length);
  return (item) => {
    if (typeof item !== 'object' || item === null) return;
    const obj = item as { apiVersion?: string; kind?: string };
    obj.apiVersion ??= apiVersion;
    obj.kind ??= kind;
  };
}

/**
 * A page's items as the byte ranges of its body, each parsed (and its kind stamped) when an iteration reaches it.
 * The body is one Buffer, held outside the JavaScript heap; an item's text and parse are young garbage as soon as
 * the caller has moved on. Iterating twice parses twice.
 */
export class PageItems<T> implements Iterable<T> {
  constructor(
    private readonly body: Buffer,
    /** Start and end offsets of each item, in pairs. */
    private readonly ranges: readonly number[],
    private readonly stamp: (item: unknown) => void,
  ) {}

  get length(): number {
    return this.ranges.length / 2;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.ranges.length; i += 2) {
      const item = parseJson(this.body, this.ranges[i] ?? 0, this.ranges[i + 1] ?? 0) as T;
      this.stamp(item);
      yield item;
    }
  }
}

function parseJson(body: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(body.toString('utf8', start, end));
  } catch (err) {
    throw new KubeApiError(0, `list page from the API server is not valid JSON at byte ${start}`, undefined, err);
  }
}

/** A list body's top-level fields other than `items` (parsed), and the byte ranges of its items (in pairs). */
export interface ScannedList {
  fields: Record<string, unknown>;
  items: number[];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * Finds the items of a list body (a JSON object with an `items` array) without parsing them: only the structure is
 * read, strings are skipped with `indexOf`. Every other top-level field is parsed as it is. A body that is not such
 * an object ends in a KubeApiError; an item that is not valid JSON fails when it is parsed.
 */
export function scanList(body: Buffer): ScannedList {
  return new ListScanner(body).list();
}

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const endsScalar = (c: number | undefined): boolean =>
  c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY || isSpace(c);

/** The structure of a JSON body read over its bytes: offsets in, offsets out. */
class ListScanner {
  private readonly n: number;

  constructor(private readonly body: Buffer) {
    this.n = body.length;
  }

  list(): ScannedList {
    const { body } = this;
    const fields: Record<string, unknown> = {};
    const items: number[] = [];
    let i = this.expect(this.space(0), OPEN_OBJECT, 'an object was expected');
    if (body[this.space(i)] === CLOSE_OBJECT) return { fields, items };
    for (;;) {
      i = this.space(i);
      if (body[i] !== QUOTE) this.fail(i, 'a field name was expected');
      const keyEnd = this.stringEnd(i);
      const key = JSON.parse(body.toString('utf8', i, keyEnd)) as string;
      i = this.space(this.expect(this.space(keyEnd), COLON, 'a colon was expected'));
      if (key === 'items' && body[i] === OPEN_ARRAY) i = this.items(i, items);
      else {
        const end = this.valueEnd(i);
        const value = parseJson(body, i, end);
        if (key !== 'items') fields[key] = value;
        else if (value !== null) this.fail(i, 'items is neither an array nor null');
        i = end;
      }
      i = this.space(i);
      if (body[i] === CLOSE_OBJECT) break;
      i = this.expect(i, COMMA, 'a comma or the end of the list was expected');
    }
    if (this.space(i + 1) !== this.n) this.fail(i + 1, 'text after the list');
    return { fields, items };
  }

  /** The items array at `i`: each item's range into `ranges`; returns the offset after the array. */
  private items(i: number, ranges: number[]): number {
    i = this.space(i + 1);
    if (this.body[i] === CLOSE_ARRAY) return i + 1;
    for (;;) {
      const end = this.valueEnd(i);
      ranges.push(i, end);
      i = this.space(end);
      if (this.body[i] === CLOSE_ARRAY) return i + 1;
      i = this.space(this.expect(i, COMMA, 'a comma or the end of items was expected'));
    }
  }

  private fail(at: number, what: string): never {
    throw new KubeApiError(0, `list page from the API server is not valid JSON: ${what} at byte ${at}`);
  }

  private expect(i: number, byte: number, what: string): number {
    if (this.body[i] !== byte) this.fail(i, what);
    return i + 1;
  }

  private space(i: number): number {
    while (i < this.n && isSpace(this.body[i])) i += 1;
    return i;
  }

  /** `i` is at an opening quote; the offset after the closing one. Strings are skipped with indexOf. */
  private stringEnd(i: number): number {
    const { body } = this;
    let at = i + 1;
    for (;;) {
      const q = body.indexOf(QUOTE, at);
      if (q < 0) return this.fail(i, 'unterminated string');
      let slashes = 0;
      while (body[q - 1 - slashes] === BACKSLASH) slashes += 1;
      if (slashes % 2 === 0) return q + 1;
      at = q + 1;
    }
  }

  private valueEnd(i: number): number {
    const c = this.body[i];
    if (c === QUOTE) return this.stringEnd(i);
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) return this.nestedEnd(i);
    const start = i;
    while (i < this.n && !endsScalar(this.body[i])) i += 1;
    return i > start ? i : this.fail(i, 'a value was expected');
  }

  private nestedEnd(i: number): number {
    const { body, n } = this;
    let depth = 0;
    while (i < n) {
      const b = body[i];
      if (b === QUOTE) {
        i = this.stringEnd(i);
        continue;
      }
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth += 1;
      else if ((b === CLOSE_OBJECT || b === CLOSE_ARRAY) && --depth === 0) return i + 1;
      i += 1;
    }
    return this.fail(i, 'unterminated object or array');
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

/** The whole body as bytes; `onHead` as for `readAll`. */
function readBody(res: IncomingMessage, onHead?: (head: string) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let watching = onHead !== undefined;
    let received = 0;
    res.on('data', (c: Buffer) => {
      chunks.push(c);
      received += c.length;
      if (watching && onHead) {
        watching = received < HEAD_LIMIT && onHead(Buffer.concat(chunks).toString('utf8'));
      }
    });
    res.on('end', () => resolve(Buffer.concat(chunks, received)));
    res.on('error', reject);
  });
}

const HEAD_LIMIT = 64 * 1024;
/**
 * The `continue` token from the start of a list body, before its items arrive: `{ known: true, token }` once the
 * list metadata is complete (token undefined on the last page), `{ known: false }` until then. Reads only the text
 * before `"items"`, which holds nothing but the list's kind, apiVersion and metadata; anything unexpected is left
 * to the full parse (`listPages` checks the two agree).
 */
export function continueTokenOf(head: string): { known: false } | { known: true; token: string | undefined } {
  const items = head.indexOf('"items":');
  if (items < 0) return { known: false };
  const prefix = head.slice(0, items);
  const token = /"metadata":\{[^{}]*?"continue":"([^"\\]*)"/.exec(prefix);
  if (token) return { known: true, token: token[1] || undefined };
  return /"metadata":\{[^{}]*\}/.test(prefix) ? { known: true, token: undefined } : { known: false };
}

function toApiError(status: number, text: string): KubeApiError {
  try {
    const s = JSON.parse(text) as { message?: string; reason?: string };
    return new KubeApiError(status, s.message ?? `HTTP ${status}`, s.reason);
  } catch {
    return new KubeApiError(status, `HTTP ${status}: ${text.slice(0, 200)}`);
  }
}
