import type { KubeApi } from '../../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../../k8s/errors.js';
import type { Logger } from '../../log/logger.js';
import type { SyncMetrics } from '../../metrics/registry.js';
import { microTime } from './decide.js';
import type { EventObject, EventWrite } from './decide.js';
import { TokenBucket } from './token-bucket.js';

/** How a write ended: the series' count on record afterwards, or a failure; `at` is when it ended (ms). */
export type WriteOutcome = { written: true; count: number; at: number } | { written: false; at: number };

/** Where the emitter hands its writes: never waits for them. */
export interface EventSink {
  /** Queues a write; false when the queue is full (the write is dropped and counted). `done` hears how it ended. */
  submit(write: EventWrite, done: (outcome: WriteOutcome) => void): boolean;
  /** Drops the writes not started (this replica stopped leading). */
  clear(): void;
  /** Drops the queue and waits for the write in flight. */
  stop(): Promise<void>;
}

export interface RecorderDeps {
  api: Pick<KubeApi, 'request'>;
  logger: Logger;
  metrics: Pick<SyncMetrics, 'events'>;
  ratePerSecond: number;
  burst: number;
  queueSize: number;
  now?: () => number;
}

type Result = 'created' | 'repeated' | 'failed' | 'dropped';
const RESULTS: readonly Result[] = ['created', 'repeated', 'failed', 'dropped'];

/** An Event write answers in milliseconds on a healthy API server; a hung one must not hold the queue long. */
const REQUEST_TIMEOUT_MS = 5_000;
const MERGE_PATCH = 'application/merge-patch+json';

interface Queued {
  write: EventWrite;
  done: (outcome: WriteOutcome) => void;
}

const eventsPath = (namespace: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
const eventPath = (namespace: string, name: string) => `${eventsPath(namespace)}/${encodeURIComponent(name)}`;

/**
 * Writes Events one at a time, at most `ratePerSecond` (bursts of `burst`) across all tools, from a bounded queue:
 * a sync pass hands its writes over and goes on. A series is created with a POST and observed again with a merge
 * PATCH of `series` (events.k8s.io/v1: the first repeat sets count 2). A create that meets 409 (a series this
 * replica did not write, e.g. before a restart or a failover) reads the series and bumps it; a repeat that meets 404
 * (the API server let the Event expire) creates it afresh. Failures are logged and counted, never thrown.
 */
export class EventRecorder implements EventSink {
  private readonly queue: Queued[] = [];
  private readonly bucket: TokenBucket;
  private draining: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RecorderDeps) {
    this.bucket = new TokenBucket(deps.ratePerSecond, deps.burst, this.now());
    for (const result of RESULTS) deps.metrics.events.inc({ result }, 0);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  submit(write: EventWrite, done: (outcome: WriteOutcome) => void): boolean {
    if (this.stopped || this.queue.length >= this.deps.queueSize) {
      this.deps.metrics.events.inc({ result: 'dropped' });
      this.deps.logger.debug(
        { tool: write.tool, namespace: write.event.metadata.namespace, event: write.event.metadata.name },
        'event queue full, event dropped',
      );
      return false;
    }
    this.queue.push({ write, done });
    this.drain();
    return true;
  }

  clear(): void {
    this.queue.length = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clear();
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.draining;
  }

  /** Writes waiting (for tests and the status line). */
  get queued(): number {
    return this.queue.length;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = this.run().finally(() => (this.draining = undefined));
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const wait = this.bucket.take(this.now());
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      const item = this.queue.shift();
      if (item) await this.one(item);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async one({ write, done }: Queued): Promise<void> {
    const { event } = write;
    try {
      const { result, count } = write.op === 'create' ? await this.create(event) : await this.repeat(write);
      this.deps.metrics.events.inc({ result });
      done({ written: true, count, at: this.now() });
    } catch (err) {
      this.deps.metrics.events.inc({ result: 'failed' });
      this.deps.logger.warn(
        {
          err: describeApiError(err),
          tool: write.tool,
          namespace: event.metadata.namespace,
          event: event.metadata.name,
          reason: event.reason,
          regarding: `${event.regarding.kind}/${event.regarding.name}`,
          op: write.op,
        },
        'could not write event',
      );
      done({ written: false, at: this.now() });
    }
  }

  /** POSTs a new series; if it exists already, observes it again. */
  private async create(event: EventObject): Promise<{ result: Result; count: number }> {
    const { namespace, name } = event.metadata;
    try {
      await this.deps.api.request('POST', eventsPath(namespace), {
        body: event,
        timeoutMs: REQUEST_TIMEOUT_MS,
        answer: 'discard',
      });
      return { result: 'created', count: 1 };
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    const existing = await this.deps.api.request<Pick<EventObject, 'series'>>('GET', eventPath(namespace, name), {
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    const count = (existing.series?.count ?? 1) + 1;
    await this.patchSeries(namespace, name, count, microTime(this.now()));
    return { result: 'repeated', count };
  }

  /** PATCHes the series' count and last observed time; a series gone (expired) is created afresh. */
  private async repeat(write: Extract<EventWrite, { op: 'repeat' }>): Promise<{ result: Result; count: number }> {
    const { namespace, name } = write.event.metadata;
    try {
      await this.patchSeries(namespace, name, write.count, write.observedAt);
      return { result: 'repeated', count: write.count };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return this.create({ ...write.event, eventTime: write.observedAt });
  }

  private async patchSeries(namespace: string, name: string, count: number, lastObservedTime: string): Promise<void> {
    await this.deps.api.request('PATCH', eventPath(namespace, name), {
      body: { series: { count, lastObservedTime } },
      contentType: MERGE_PATCH,
      timeoutMs: REQUEST_TIMEOUT_MS,
      answer: 'discard',
    });
  }
}
