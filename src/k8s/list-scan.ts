import { KubeApiError } from './errors.js';

/*
 * List pages read over their bytes. A list body is scanned for its structure only (where each item starts and ends);
 * each item is parsed when a caller reaches it, so a page of thousands of objects is never one parsed tree on the
 * heap. The `continue` token is read from the start of a body before the rest has arrived.
 */

/** A list page as it comes out of the scanner: its items parsed on iteration, its version and its `continue` token. */
export interface ScannedPage<T> {
  items: PageItems<T>;
  resourceVersion: string;
  continueToken: string | undefined;
}

/** The page a list body holds; a body that is not a JSON list ends in a KubeApiError. */
export function scanPage<T>(body: Buffer): ScannedPage<T> {
  const list = scanList(body);
  const fields = list.fields as {
    apiVersion?: string;
    kind?: string;
    metadata?: { resourceVersion?: string; continue?: string };
  };
  return {
    items: new PageItems<T>(body, list.items, kindStamp(fields.apiVersion, fields.kind)),
    resourceVersion: fields.metadata?.resourceVersion ?? '',
    continueToken: fields.metadata?.continue || undefined,
  };
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
 * the caller has moved on. A page is read once: when an iteration has reached the end, the body's memory is given
 * back at once (its ArrayBuffer detached, when the body has one of its own) instead of when V8 next collects the
 * Buffer, which for a Buffer that lived through two scavenges is the next full collection: at an import's 20,000
 * CronJobs those dead pages were tens of MB of RSS (docs/benchmarks.md, Import: memory).
 */
export class PageItems<T> implements Iterable<T> {
  private read = false;

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
    if (this.read) throw new TypeError('a list page is read once: its bytes were given back after its first reading');
    for (let i = 0; i < this.ranges.length; i += 2) {
      const item = parseJson(this.body, this.ranges[i] ?? 0, this.ranges[i + 1] ?? 0) as T;
      this.stamp(item);
      yield item;
    }
    this.read = true;
    release(this.body);
  }
}

/**
 * Frees a Buffer's memory now, if the Buffer is the whole of its ArrayBuffer (a body read from a response is; a
 * small Buffer carved from Node's shared pool is not, and is left to the collector). The Buffer is empty afterwards.
 */
function release(body: Buffer): void {
  const ab = body.buffer;
  if (!(ab instanceof ArrayBuffer) || body.byteOffset !== 0 || ab.byteLength !== body.length) return;
  if (!ab.detached) ab.transfer(0);
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
