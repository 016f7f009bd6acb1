import type { WebhookMetrics } from '../metrics/registry.js';
import { ToolLabels, kindLabel, operationLabel, resourceLabel } from './labels.js';
import type { Recording, WebhookName } from './policy/types.js';
import { RecentKeys } from './recent-keys.js';

/** How a review ended, as `toolforge_jobs_admission_requests_total` counts it. */
export type Outcome = 'allow' | 'deny' | 'error';

/** A retried admission call for the same write arrives within the webhook timeout plus the apiserver's backoff. */
const REPEAT_WINDOW_MS = 30_000;
const MAX_REMEMBERED_WRITES = 50_000;
const DEFAULT_MAX_TOOL_SERIES = 10_000;

export interface RecorderOptions {
  /** Distinct tools with their own `tool_name` series (`ToolLabels`). */
  maxToolSeries?: number | undefined;
  toolNamespacePrefix: string;
  /** Milliseconds clock for the repeat window; tests pass their own. */
  now?: (() => number) | undefined;
}

/**
 * The webhook's admission counters and timings, applied once each answer is known. Labelled children are looked up
 * once per label set and kept (bounded: `ToolLabels` caps tools, kinds and operations are closed sets), so a review
 * costs map lookups, not prom-client's label hashing.
 */
export class Recorder {
  private readonly recent = new RecentKeys(REPEAT_WINDOW_MS, MAX_REMEMBERED_WRITES);
  private readonly tools: ToolLabels;
  private readonly now: () => number;
  private readonly requests = new Map<string, ReturnType<WebhookMetrics['admissionRequests']['labels']>>();
  private readonly durations = new Map<WebhookName, ReturnType<WebhookMetrics['admissionDuration']['labels']>>();
  private readonly writes = new Map<string, ReturnType<WebhookMetrics['directWrites']['labels']>>();

  constructor(
    private readonly metrics: WebhookMetrics,
    options: RecorderOptions,
  ) {
    this.tools = new ToolLabels(options.maxToolSeries ?? DEFAULT_MAX_TOOL_SERIES, options.toolNamespacePrefix);
    this.now = options.now ?? Date.now;
  }

  /**
   * Applies what a decision records, given whether the write was allowed; returns whether it counted. A direct
   * write counts once per write within the repeat window (a retried call is not a second write); a break-glass write
   * only when allowed; a storage write denial only when denied.
   */
  record(recording: Recording | undefined, allowed: boolean): boolean {
    if (recording === undefined) return false;
    switch (recording.metric) {
      case 'directWrites': {
        if (!allowed || !this.recent.firstSeen(recording.key, this.now())) return false;
        const { tool_name, kind, operation } = recording.labels;
        const labels = {
          tool_name: this.tools.label(tool_name),
          kind: kindLabel(kind),
          operation: operationLabel(operation),
        };
        const key = `${labels.tool_name}\n${labels.kind}\n${labels.operation}`;
        let counter = this.writes.get(key);
        if (counter === undefined) {
          counter = this.metrics.directWrites.labels(labels);
          this.writes.set(key, counter);
        }
        counter.inc();
        return true;
      }
      case 'breakGlass':
        if (!allowed) return false;
        this.metrics.breakGlass.inc({
          resource: resourceLabel(recording.labels.resource),
          operation: operationLabel(recording.labels.operation),
        });
        return true;
      case 'storageWritesDenied':
        if (allowed) return false;
        this.metrics.storageWritesDenied.inc({ operation: operationLabel(recording.labels.operation) });
        return true;
    }
  }

  /** Observes a review's duration (seconds) and counts it under its outcome. */
  finish(webhook: WebhookName, outcome: Outcome, seconds: number): void {
    let duration = this.durations.get(webhook);
    if (duration === undefined) {
      duration = this.metrics.admissionDuration.labels({ webhook });
      this.durations.set(webhook, duration);
    }
    duration.observe(seconds);
    const key = `${webhook}/${outcome}`;
    let count = this.requests.get(key);
    if (count === undefined) {
      count = this.metrics.admissionRequests.labels({ webhook, decision: outcome });
      this.requests.set(key, count);
    }
    count.inc();
  }
}
