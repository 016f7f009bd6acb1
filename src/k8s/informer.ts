import { setImmediate } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { KubeApi, LazyListPage, WatchEvent } from './api.js';
import { describeApiError, isGone } from './errors.js';
import type { Gate } from './gate.js';

interface ObjectMeta {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface InformerOptions<T extends ObjectMeta, E> {
  /** Short name for logs, e.g. "cronjobs". */
  name: string;
  api: KubeApi;
  /** Collection path across all namespaces, e.g. /apis/batch/v1/cronjobs. */
  path: string;
  labelSelector?: string;
  /** A field selector for the list and the watch, e.g. `metadata.name=x` to follow one object of a busy collection. */
  fieldSelector?: string;
  pageSize: number;
  /** A full relist this often, to heal anything a watch missed. */
  relistSeconds: number;
  /** No event (bookmarks included) for this long means the watch is stalled: it is dropped and relisted. */
  stallSeconds: number;
  /** Keeps what the caller needs of an object (undefined drops it): the store never holds whole objects. */
  transform: (obj: T) => E | undefined;
  /**
   * Whether `previous` (the entry the store holds for this object) still stands for `obj`, typically because the
   * resourceVersion is the same: a relist then keeps it without transforming again and reports no change for it.
   */
  unchanged?: (obj: T, previous: E) => boolean;
  logger: Logger;
  /**
   * false: list once and do not watch (a one-shot command that learns what it needs from elsewhere afterwards); the
   * store then holds the list until `stop()`. Default true.
   */
  watch?: boolean;
  /** After every complete list. */
  onSynced?: () => void;
  /** After every change of the store (entry undefined = gone). */
  onChange?: (namespace: string, name: string, entry: E | undefined) => void;
  onError?: (stage: 'list' | 'watch', err: unknown) => void;
  /** Shared by informers to bound list pages in flight: each page is megabytes of JSON until transformed. */
  listGate?: Gate;
  /**
   * Shared by informers so that their relists after the first list take turns: each holds it for its whole relist,
   * and keeps watching until its turn comes. The first lists run together (how fast the first reconcile comes
   * depends on them).
   */
  relistGate?: Gate;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A watch that delivered events (or bookmarks) for this long proves the source healthy: the backoff resets. */
const HEALTHY_WATCH_MS = 60_000;

/**
 * List + watch + store with the recoveries client-node leaves to its callers: paginated lists, relist on 410,
 * restart with jittered exponential backoff on any other error, periodic relist, and stall detection.
 */
export class Informer<T extends ObjectMeta, E> {
  private readonly current = new ObjectStore<E>();
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private failures = 0;
  private lastEventAt = 0;
  /** Lists begun, the first included. */
  private lists = 0;

  constructor(private readonly options: InformerOptions<T, E>) {}

  /** What it lists and watches (its options' name). */
  get name(): string {
    return this.options.name;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  /**
   * When the informer last heard from the API server (a list's end, or a watch event, bookmarks included), wall clock
   * ms; 0 before its first list ends. Its store holds every change made until shortly before then; a stalled or
   * failing watch stops it from advancing.
   */
  get currentAsOf(): number {
    return this.lastEventAt;
  }

  /** What the informer holds now. */
  get store(): ObjectStore<E> {
    return this.current;
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /**
   * List, then watch until the relist period ends; on any error, start over after a jittered backoff. The backoff
   * only resets once a watch has stayed healthy for a while, so a watch that always dies right after the list (RBAC
   * without `watch`, a proxy that cuts streams) relists at a falling rate instead of once a second. A 410 relists at
   * once the first time (expired resourceVersion, the normal case) and backs off when it repeats.
   */
  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    let goneInARow = 0;
    // The relist turn a watch waited for (see watchUntilRelist), held until the relist it was for has run.
    let turn: (() => void) | undefined;
    while (!signal.aborted) {
      let stage: 'list' | 'watch' = 'list';
      try {
        const gate = this.lists > 0 ? this.options.relistGate : undefined;
        let rv: string;
        if (gate) {
          const release = turn ?? (await gate.acquire());
          turn = undefined;
          try {
            rv = await this.relist();
          } finally {
            release();
          }
        } else rv = await this.relist();
        if (this.options.watch === false) {
          await untilAborted(signal);
          break;
        }
        stage = 'watch';
        turn = await this.watchUntilRelist(rv);
        goneInARow = 0;
      } catch (err) {
        if (signal.aborted) break;
        const gone = isGone(err);
        goneInARow = gone ? goneInARow + 1 : 0;
        if (!gone) this.options.onError?.(stage, err);
        this.options.logger.warn(
          { informer: this.options.name, stage, err: describeApiError(err), gone },
          'informer restarting',
        );
        if (!gone || goneInARow > 1) await this.backoff(signal);
      }
    }
    turn?.();
  }

  private async backoff(signal: AbortSignal): Promise<void> {
    this.failures += 1;
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures, 10));
    const ms = Math.round((this.options.random ?? Math.random)() * cap);
    await (this.options.sleep ?? sleep)(ms, signal);
  }

  /**
   * Lists into the store in place: an object whose entry still stands keeps it (and its slot), a new or changed one
   * is reported as it is read, and what the list no longer holds is swept at the end. No second store is built
   * beside the one in use: at a relist of tens of thousands of objects, that store (maps, keys) lived through the
   * whole list, so it was promoted to the old generation and then dropped, every relist.
   */
  private async relist(): Promise<string> {
    // A stop while this relist waited for its turn ends it before it begins.
    if (this.stopper.signal.aborted) throw new Error('informer stopped');
    const store = this.current;
    const list = ++this.lists;
    this.options.logger.debug({ informer: this.options.name, list }, 'informer listing');
    store.beginSweep();
    let rv = '';
    const pages = this.options.api.listPages<T>(
      this.options.path,
      {
        limit: this.options.pageSize,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      },
      'lazy',
    );
    const gate = this.options.listGate;
    const fetchPage = () => {
      const page = gate ? gate.run(() => pages.next()) : pages.next();
      // It may fail while this page is still being transformed (or after a stop): handled where it is awaited, so
      // mark it handled now rather than let an early rejection end the process.
      page.catch(() => undefined);
      return page;
    };
    // The next page is requested before this one is transformed, so the API server prepares it meanwhile.
    for (let pending = fetchPage(); ;) {
      let next: IteratorResult<LazyListPage<T>> | undefined = await pending;
      if (next.done) break;
      // A stop in the middle of a long initial list ends it at the next page, not at the last one.
      if (this.stopper.signal.aborted) throw new Error('informer stopped');
      pending = fetchPage();
      // Let that request go out before transforming this page: it is sent from a chain of promise callbacks, which
      // would otherwise wait for the whole (synchronous) transform, and the server would sit idle meanwhile.
      await setImmediate();
      // Items are parsed one at a time as they are taken (see listPages): a page's parse never lives as a whole.
      this.addPage(next.value.items, store);
      rv = next.value.resourceVersion;
      // Dropped before the next await, so that the page's body is not kept alive while the next page arrives.
      next = undefined;
    }
    for (const [namespace, name] of store.sweep()) this.options.onChange?.(namespace, name, undefined);
    this.lastEventAt = Date.now();
    this.options.logger.debug(
      { informer: this.options.name, objects: store.size, resourceVersion: rv, list },
      'informer listed',
    );
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.options.onSynced?.();
    return rv;
  }

  /**
   * Takes a listed page into the store: the entry of an object whose resourceVersion has not changed is kept as it
   * is (and not reported), any other object is transformed and reported; an object the transform now drops is left
   * for the sweep.
   */
  private addPage(items: Iterable<T>, store: ObjectStore<E>): void {
    for (const obj of items) {
      const [namespace, name] = namesOf(obj);
      const previous = store.get(namespace, name);
      if (previous !== undefined && this.options.unchanged?.(obj, previous)) {
        store.keep(namespace, name);
        continue;
      }
      const entry = this.options.transform(obj);
      if (entry === undefined) continue;
      store.set(namespace, name, entry);
      if (entry !== previous) this.options.onChange?.(namespace, name, entry);
    }
  }

  /**
   * Watches from `rv`, re-opening ended watches, until the relist period is over or the watch stalls. With a relist
   * gate, the watch goes on past the period until this informer's turn to relist comes, so that nothing it would
   * deliver meanwhile waits for the relist: the turn, once granted, is returned to be held through the relist. A
   * turn granted after the watch ended otherwise (a stall, an error, a stop) is given back at once.
   */
  private async watchUntilRelist(startRv: string): Promise<(() => void) | undefined> {
    let rv = startRv;
    const period = this.options.relistSeconds * 1000;
    const relistAt = Date.now() + period;
    const gate = this.options.relistGate;
    let current: AbortController | undefined;
    const turn = askTurnAfter(gate, period, () => current?.abort());
    let handedOver = false;
    try {
      while (!this.stopper.signal.aborted && (gate ? turn.held() === undefined : Date.now() < relistAt)) {
        const watchAbort = new AbortController();
        current = watchAbort;
        const onStop = () => watchAbort.abort();
        this.stopper.signal.addEventListener('abort', onStop, { once: true });
        let stalled = false;
        const stallTimer = setInterval(
          () => {
            if (Date.now() - this.lastEventAt > this.options.stallSeconds * 1000) {
              stalled = true;
              watchAbort.abort();
            }
          },
          Math.max(250, Math.min(5000, (this.options.stallSeconds * 1000) / 4)),
        );
        // Past the period (waiting for the turn) the watch is ended by the turn, not by its timeout.
        const remaining = Date.now() < relistAt ? Math.max(1, Math.floor((relistAt - Date.now()) / 1000)) : 300;
        const openedAt = Date.now();
        let failed: unknown;
        try {
          await this.options.api.watch<T>(
            this.options.path,
            {
              resourceVersion: rv,
              allowWatchBookmarks: true,
              labelSelector: this.options.labelSelector,
              fieldSelector: this.options.fieldSelector,
              timeoutSeconds: Math.min(remaining, 300),
            },
            (event) => {
              this.lastEventAt = Date.now();
              if (this.lastEventAt - openedAt > HEALTHY_WATCH_MS) this.failures = 0;
              rv = event.object.metadata?.resourceVersion ?? rv;
              this.apply(event);
            },
            watchAbort.signal,
          );
        } catch (err) {
          // An expired resourceVersion (410) needs a relist; anything else (a dropped connection, a 5xx, a refused
          // watch) resumes from the last resourceVersion seen, after a backoff, as client-go's reflector does.
          if (isGone(err) || this.stopper.signal.aborted) throw err;
          failed = err;
        } finally {
          clearInterval(stallTimer);
          this.stopper.signal.removeEventListener('abort', onStop);
        }
        if (failed !== undefined) {
          this.options.onError?.('watch', failed);
          this.options.logger.warn(
            { informer: this.options.name, err: describeApiError(failed), resourceVersion: rv },
            'watch failed, resuming from the last resourceVersion',
          );
          await this.backoff(this.stopper.signal);
          continue;
        }
        if (stalled) {
          this.options.logger.warn(
            { informer: this.options.name, stallSeconds: this.options.stallSeconds },
            'watch stalled, relisting',
          );
          this.options.onError?.('watch', new Error('watch stalled'));
          return;
        }
      }
      const held = turn.held();
      handedOver = held !== undefined;
      return held;
    } finally {
      if (!handedOver) turn.cancel();
    }
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'BOOKMARK') return;
    const [namespace, name] = namesOf(event.object);
    const entry = event.type === 'DELETED' ? undefined : this.options.transform(event.object);
    if (entry === undefined) {
      if (this.current.delete(namespace, name)) this.options.onChange?.(namespace, name, undefined);
    } else {
      this.current.set(namespace, name, entry);
      this.options.onChange?.(namespace, name, entry);
    }
  }
}

/**
 * A relist turn asked of `gate` after `ms` (no gate: never): `onGranted` runs once it is held. `cancel` gives it back,
 * at once if held, or as soon as it is granted.
 */
function askTurnAfter(
  gate: Gate | undefined,
  ms: number,
  onGranted: () => void,
): { held: () => (() => void) | undefined; cancel: () => void } {
  let release: (() => void) | undefined;
  let cancelled = false;
  const timer = gate
    ? setTimeout(() => {
        void gate.acquire().then((granted) => {
          if (cancelled) granted();
          else {
            release = granted;
            onGranted();
          }
        });
      }, ms)
    : undefined;
  return {
    held: () => release,
    cancel: () => {
      clearTimeout(timer);
      cancelled = true;
      release?.();
    },
  };
}

function namesOf(obj: ObjectMeta): [namespace: string, name: string] {
  return [obj.metadata?.namespace ?? '', obj.metadata?.name ?? ''];
}

/**
 * An informer's entries by namespace, then name: tens of thousands of objects need no "namespace/name" key string
 * each (built by concatenation, such a key is a rope of three strings). Entries live in one array and the maps hold
 * their slots; a relist marks each slot it sees in a parallel array of numbers, then sweeps the rest: no object per
 * entry, and no second store per relist.
 */
export class ObjectStore<E> {
  private readonly byNamespace = new Map<string, Map<string, number>>();
  private readonly values: Array<E | undefined> = [];
  /** Per slot, the sweep it was last seen in. */
  private readonly seenIn: number[] = [];
  private readonly free: number[] = [];
  private sweepNo = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(namespace: string, name: string): E | undefined {
    const slot = this.byNamespace.get(namespace)?.get(name);
    return slot === undefined ? undefined : this.values[slot];
  }

  has(namespace: string, name: string): boolean {
    return this.byNamespace.get(namespace)?.has(name) ?? false;
  }

  set(namespace: string, name: string, entry: E): void {
    let names = this.byNamespace.get(namespace);
    if (!names) this.byNamespace.set(namespace, (names = new Map()));
    let slot = names.get(name);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.values.length;
      names.set(name, slot);
      this.count += 1;
    }
    this.values[slot] = entry;
    this.seenIn[slot] = this.sweepNo;
  }

  delete(namespace: string, name: string): boolean {
    const names = this.byNamespace.get(namespace);
    const slot = names?.get(name);
    if (!names || slot === undefined) return false;
    names.delete(name);
    this.values[slot] = undefined;
    this.free.push(slot);
    this.count -= 1;
    if (names.size === 0) this.byNamespace.delete(namespace);
    return true;
  }

  /** Starts a sweep: from now on, only the entries set or kept count as seen. */
  beginSweep(): void {
    this.sweepNo += 1;
  }

  /** Marks an entry seen in this sweep, as it is. */
  keep(namespace: string, name: string): void {
    const slot = this.byNamespace.get(namespace)?.get(name);
    if (slot !== undefined) this.seenIn[slot] = this.sweepNo;
  }

  /** Deletes every entry not seen since `beginSweep`, and says where they were. */
  sweep(): Array<[namespace: string, name: string]> {
    const gone: Array<[namespace: string, name: string]> = [];
    for (const [namespace, names] of this.byNamespace)
      for (const [name, slot] of names) if (this.seenIn[slot] !== this.sweepNo) gone.push([namespace, name]);
    for (const [namespace, name] of gone) this.delete(namespace, name);
    return gone;
  }

  *entries(): Generator<[namespace: string, name: string, entry: E]> {
    for (const [namespace, names] of this.byNamespace)
      for (const [name, slot] of names) yield [namespace, name, this.values[slot] as E];
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
