import { isPhase } from '../config/phases.js';
import type { Phase } from '../config/phases.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { setPhaseInfo } from '../metrics/registry.js';
import type { Metrics } from '../metrics/registry.js';
import type { KubeApi } from './api.js';
import { describeApiError } from './errors.js';
import { Informer } from './informer.js';

interface ConfigMap {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/** What the informer keeps of the phase ConfigMap. */
interface PhaseEntry {
  value: string | undefined;
  resourceVersion: string | undefined;
}

export type PhaseListener = (next: Phase, previous: Phase) => void;

/**
 * The rollout phase as the webhook and the sync see it: a PhaseSource in production; a fixed or scripted phase in
 * tests. Each takes the part it uses (`Pick<PhaseView, …>`).
 */
export interface PhaseView {
  current(): Phase;
  /** False until the phase has been read; nothing acts on the phase before. */
  known(): boolean;
  /** Resolves once the phase has been read. */
  whenKnown(): Promise<void>;
  /** Calls `listener(next, previous)` after every change; returns the unsubscribe function. */
  onChange(listener: PhaseListener): () => void;
  start(): void;
  stop(): Promise<void>;
}

export interface PhaseSourceOptions {
  config: Pick<Config, 'phase'> & { sync: Pick<Config['sync'], 'relistSeconds' | 'stallSeconds'> };
  api: KubeApi;
  logger: Logger;
  metrics: Metrics;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/**
 * The rollout phase from its ConfigMap (`config.phase.{namespace,name,key}`), watched and applied without restart.
 *
 * - A valid value is the phase. A ConfigMap that does not exist means `config.phase.initial`: the phase is a function
 *   of what is stored, so replicas started at different times agree.
 * - An invalid or missing key, or an API that cannot be read, keeps the last known phase and sets
 *   `phase_config_stale` to 1 until a valid read.
 * - `known()` is false until the first valid read; the webhook is not ready before that.
 */
export class PhaseSource implements PhaseView {
  private phase: Phase;
  private isKnown = false;
  private knownWaiters: Array<() => void> = [];
  private readonly listeners = new Set<PhaseListener>();
  private readonly informer: Informer<ConfigMap, PhaseEntry>;
  private readonly key: string;
  private readonly log: Logger;

  constructor(private readonly o: PhaseSourceOptions) {
    const { namespace, name } = o.config.phase;
    this.phase = o.config.phase.initial;
    this.key = `${namespace}/${name}`;
    this.log = o.logger.child({ component: 'phase-source', configMap: this.key });
    setPhaseInfo(o.metrics, this.phase);
    o.metrics.phaseStale.set(0);
    this.informer = new Informer<ConfigMap, PhaseEntry>({
      name: 'phase-configmap',
      api: o.api,
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      pageSize: 50,
      relistSeconds: o.config.sync.relistSeconds,
      stallSeconds: o.config.sync.stallSeconds,
      logger: this.log,
      transform: (cm) =>
        cm.metadata?.name === name
          ? { value: cm.data?.[o.config.phase.key], resourceVersion: cm.metadata.resourceVersion }
          : undefined,
      onChange: (ns, objectName, entry) => {
        if (ns === namespace && objectName === name) this.apply(entry);
      },
      onSynced: () => {
        if (!this.informer.store.has(namespace, name)) this.apply(undefined);
      },
      onError: (stage, err) => this.markStale({ stage, err: describeApiError(err) }),
      ...(o.sleep ? { sleep: o.sleep } : {}),
      ...(o.random ? { random: o.random } : {}),
    });
  }

  current(): Phase {
    return this.phase;
  }

  known(): boolean {
    return this.isKnown;
  }

  /** Resolves at the first valid read (or the ConfigMap found absent); nothing may act on the phase before. */
  whenKnown(): Promise<void> {
    return this.isKnown ? Promise.resolve() : new Promise((resolve) => this.knownWaiters.push(resolve));
  }

  /** Calls `listener(next, previous)` after every change; returns the unsubscribe function. */
  onChange(listener: PhaseListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  private apply(entry: PhaseEntry | undefined): void {
    if (entry === undefined) {
      if (!this.isKnown || this.phase !== this.o.config.phase.initial) {
        this.log.warn({ phase: this.o.config.phase.initial }, 'phase ConfigMap not found, using the initial phase');
      }
      this.settle(this.o.config.phase.initial, undefined);
      return;
    }
    if (!isPhase(entry.value)) {
      this.markStale({
        value: entry.value ?? null,
        key: this.o.config.phase.key,
        resourceVersion: entry.resourceVersion,
      });
      return;
    }
    this.settle(entry.value, entry.resourceVersion);
  }

  private settle(next: Phase, resourceVersion: string | undefined): void {
    if (!this.isKnown) this.log.info({ phase: next, resourceVersion }, 'phase known');
    this.isKnown = true;
    for (const resolve of this.knownWaiters.splice(0)) resolve();
    this.o.metrics.phaseStale.set(0);
    const previous = this.phase;
    if (next === previous) return;
    this.phase = next;
    setPhaseInfo(this.o.metrics, next);
    this.log.info({ from: previous, to: next, resourceVersion }, 'phase changed');
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (err) {
        this.log.error({ err }, 'phase listener failed');
      }
    }
  }

  private markStale(details: Record<string, unknown>): void {
    this.o.metrics.phaseStale.set(1);
    this.log.warn(
      { ...details, phase: this.phase, known: this.isKnown },
      'phase cannot be read, keeping the last known phase',
    );
  }
}
