import { EarliestTimer } from './earliest-timer.js';
import type { Config } from '../config/schema.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../k8s/errors.js';
import { CONFIGMAPS, collectionPath, objectPath } from '../k8s/paths.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { Checkpoint, Tombstone } from './tombstones.js';

/**
 * At most this many jobs without a CR are kept in a checkpoint (a ConfigMap holds 1 MiB); beyond it the checkpoint
 * keeps none and is no evidence (an initial backfill of thousands of jobs, or a phase that backfills nothing).
 */
export const UNMATCHED_KEPT = 2000;
/** A checkpoint is written again this often even when nothing changed, so that its time stays recent. */
const REFRESH_MS = 30_000;
/**
 * Writes of one replica are at least this far apart: a burst of deletes is one write (every write is also a watch
 * event for whoever watches the namespace's ConfigMaps, the phase's readers).
 */
const WRITE_GAP_MS = 250;
/** Another replica's checkpoint this old is of a replica that is gone (live ones refresh theirs): it is removed. */
const STALE_MS = 10 * 60_000;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;
const FORMAT = 1;

/** The ConfigMap the replicas persist their checkpoints in: next to the Lease, named after it. */
export function tombstonesConfigMap(config: Pick<Config, 'sync'>): { namespace: string; name: string } {
  return { namespace: config.sync.leaseNamespace, name: `${config.sync.leaseName}-tombstones` };
}

/** A replica's key in the ConfigMap: its identity, with what a ConfigMap key may not hold replaced. */
export const checkpointKey = (identity: string): string => identity.replace(/[^-._a-zA-Z0-9]/g, '_') || '_';

interface Persisted {
  v: number;
  at: number;
  unmatched: string[] | null;
  /** [tool, type, name, at, workloadUid or null, away (1) or absent]. */
  tombstones: Array<[string, string, string, number, string | null, 1?]>;
}

export function encodeCheckpoint(c: Checkpoint): string {
  const p: Persisted = {
    v: FORMAT,
    at: c.at,
    unmatched: c.unmatched === null ? null : [...c.unmatched].sort(),
    tombstones: c.tombstones.map((t) => {
      const row: Persisted['tombstones'][number] = [t.tool, t.type, t.name, t.at, t.workloadUid ?? null];
      if (t.away) row.push(1);
      return row;
    }),
  };
  return JSON.stringify(p);
}

/** A checkpoint from its text; undefined for text this version does not read (its key is then left alone). */
export function decodeCheckpoint(text: string): Checkpoint | undefined {
  let p: Partial<Persisted>;
  try {
    p = JSON.parse(text) as Partial<Persisted>;
  } catch {
    return undefined;
  }
  if (p?.v !== FORMAT || typeof p.at !== 'number' || !Array.isArray(p.tombstones)) return undefined;
  const unmatched = Array.isArray(p.unmatched) ? new Set(p.unmatched.filter((k) => typeof k === 'string')) : null;
  const tombstones: Tombstone[] = [];
  for (const row of p.tombstones) {
    if (!Array.isArray(row)) continue;
    const [tool, type, name, at, uid, away] = row;
    if (typeof tool !== 'string' || typeof type !== 'string' || typeof name !== 'string' || typeof at !== 'number')
      continue;
    const t: Tombstone = { tool, type, name, at };
    if (typeof uid === 'string') t.workloadUid = uid;
    if (away === 1) t.away = true;
    tombstones.push(t);
  }
  return { at: p.at, unmatched, tombstones };
}

/** The keys of other replicas' checkpoints older than STALE_MS at `now` (their replicas are gone). */
export function staleKeys(data: Readonly<Record<string, string>>, mine: string, now: number): string[] {
  return Object.entries(data)
    .filter(([key, text]) => {
      if (key === mine) return false;
      const c = decodeCheckpoint(text);
      return c !== undefined && now - c.at > STALE_MS;
    })
    .map(([key]) => key);
}

export interface TombstoneStoreDeps {
  api: Pick<KubeApi, 'request'>;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  metrics: Pick<SyncMetrics, 'syncErrors'>;
  /** This replica's checkpoint as of now. */
  checkpoint: () => Checkpoint;
}

interface ConfigMap {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

/** The ConfigMap as last read or written: its data and the resourceVersion it had then. */
interface Seen {
  data: Record<string, string>;
  version: string | undefined;
}

const seenOf = (cm: ConfigMap): Seen => ({ data: cm.data ?? {}, version: cm.metadata?.resourceVersion });

/**
 * Persists this replica's checkpoint (sync/tombstones) under its own key of one ConfigMap, and reads every
 * replica's at start. Each replica writes only its key, with a JSON merge patch: replicas never overwrite each
 * other, and every replica that sees a delete persists it, whichever is the leader and whichever lives longest.
 * A checkpoint is written when it changed (after a pass) and at least every REFRESH_MS; the checkpoints of replicas
 * gone for STALE_MS are removed by the others.
 */
export class TombstoneStore {
  private readonly key: string;
  private readonly path: string;
  /** The ConfigMap as last read or written (other replicas' keys, to find stale ones). */
  private seen: Seen = { data: {}, version: undefined };
  /** The last checkpoint written, without its time, and when. */
  private written: { content: string; at: number } | undefined;
  private readonly timer = new EarliestTimer({ unref: true });
  private writing: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private lastWriteEnd = 0;
  private stopped = false;
  private wakeLoad: () => void = () => undefined;

  constructor(private readonly deps: TombstoneStoreDeps) {
    this.key = checkpointKey(deps.identity);
    this.path = objectPath(CONFIGMAPS, deps.namespace, deps.name);
  }

  /**
   * Every replica's checkpoint, read before this replica's first plan; no ConfigMap yet means none. A failed read
   * is retried until it succeeds (or `stop`): until then nothing may be backfilled.
   */
  async load(): Promise<Checkpoint[]> {
    while (!this.stopped) {
      try {
        const cm = await this.deps.api.request<ConfigMap>('GET', this.path, { timeoutMs: REQUEST_TIMEOUT_MS });
        this.seen = seenOf(cm);
        this.failures = 0;
        return Object.values(this.seen.data).flatMap((text) => decodeCheckpoint(text) ?? []);
      } catch (err) {
        if (isNotFound(err)) return [];
        this.failed(err, 'could not read the persisted tombstones, retrying; nothing is backfilled until then');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.retryDelay());
          this.wakeLoad = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    return [];
  }

  /** After a pass: the checkpoint is written soon if it changed. */
  changed(): void {
    this.schedule(0);
  }

  /** Stops writing, after the write in flight. */
  async stop(): Promise<void> {
    this.abandon();
    await this.writing;
  }

  /** Stops writing without waiting (a simulated SIGKILL): a write in flight may or may not land. */
  abandon(): void {
    this.stopped = true;
    this.wakeLoad();
    this.timer.clear();
  }

  /** Writes the checkpoint in `delayMs` (or sooner, if already due sooner); one write at a time. */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    const now = Date.now();
    const at = now + Math.max(delayMs, this.lastWriteEnd + WRITE_GAP_MS - now, 0);
    this.timer.arm(at, () => {
      this.writing = this.write().then((next) => {
        this.writing = undefined;
        this.lastWriteEnd = Date.now();
        const again = this.again;
        this.again = false;
        this.schedule(again ? 0 : next);
      });
    });
  }

  /** Writes the checkpoint if it changed or is due a refresh; returns when to look again (ms). */
  private async write(): Promise<number> {
    if (this.stopped) return Infinity;
    const c = this.deps.checkpoint();
    const content = encodeCheckpoint({ ...c, at: 0 });
    if (this.written?.content === content && c.at - this.written.at < REFRESH_MS) {
      return this.written.at + REFRESH_MS - c.at;
    }
    const mine = { [this.key]: encodeCheckpoint(c) };
    const stale = staleKeys(this.seen.data, this.key, c.at);
    try {
      this.seen =
        stale.length === 0
          ? await this.patch(mine)
          : await this.patch(
              { ...mine, ...Object.fromEntries(stale.map((key) => [key, null])) },
              this.seen.version,
            ).catch(async (err: unknown) => {
              // The ConfigMap changed since the keys were judged stale (a replica may have come back and written its
              // key): write this replica's key only, and judge again from what that write returns.
              if (!isConflict(err)) throw err;
              return this.patch(mine);
            });
      this.written = { content, at: c.at };
      this.failures = 0;
      return REFRESH_MS;
    } catch (err) {
      this.failed(err, 'could not persist the tombstones, will retry');
      // A change meanwhile waits for the retry too.
      this.again = false;
      return this.retryDelay();
    }
  }

  /**
   * Merges `data` into the ConfigMap (creating it if missing); returns it after the write. With `ifVersion`, only if
   * the ConfigMap still has that resourceVersion (409 otherwise): removing other replicas' keys is decided on what
   * was read, so it must not apply to anything written since.
   */
  private async patch(data: Record<string, string | null>, ifVersion?: string): Promise<Seen> {
    const { api, namespace, name } = this.deps;
    for (let attempt = 0; ; attempt++) {
      try {
        const cm = await api.request<ConfigMap>('PATCH', this.path, {
          body: ifVersion === undefined ? { data } : { metadata: { resourceVersion: ifVersion }, data },
          contentType: 'application/merge-patch+json',
          timeoutMs: REQUEST_TIMEOUT_MS,
        });
        return seenOf(cm);
      } catch (err) {
        if (!isNotFound(err) || attempt > 0) throw err;
      }
      const created = Object.fromEntries(Object.entries(data).filter((e): e is [string, string] => e[1] !== null));
      try {
        const cm = await api.request<ConfigMap>('POST', collectionPath(CONFIGMAPS, namespace), {
          body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: created },
          timeoutMs: REQUEST_TIMEOUT_MS,
        });
        return seenOf(cm);
      } catch (err) {
        // Another replica created it meanwhile: patch it (once more).
        if (!isConflict(err)) throw err;
      }
    }
  }

  private failed(err: unknown, message: string): void {
    this.failures += 1;
    this.deps.metrics.syncErrors.inc({ stage: 'tombstones' });
    this.deps.logger.warn({ err: describeApiError(err), configMap: this.deps.name, failures: this.failures }, message);
  }

  /** 1 s, doubling per failure, up to 30 s. */
  private retryDelay(): number {
    return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(this.failures - 1, 16));
  }
}
