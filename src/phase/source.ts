import type { Config } from '../config/schema.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError } from '../k8s/errors.js';
import { Informer } from '../k8s/informer.js';
import type { Logger } from '../log/logger.js';
import { isPhase } from './behaviour.js';
import type { Phase } from './behaviour.js';
import { phaseCollectionPath } from './store.js';
import type { PhaseConfigMap } from './store.js';

/** What the informer keeps of the phase ConfigMap. */
interface PhaseEntry {
  value: string | undefined;
  resourceVersion: string | undefined;
}

export type PhaseListener = (next: Phase, previous: Phase) => void;

/**
 * What a PhaseSource reports after construction and every read: the phase in force (`undefined` until the
 * ConfigMap has been read once) and whether the last read failed, so the last known phase is in use.
 */
export interface PhaseReport {
  phase: Phase | undefined;
  stale: boolean;
}

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
  /** Called with the state at construction and after every read; the caller exports it (`phase_info`, …). */
  report?: (report: PhaseReport) => void;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/**
 * The rollout phase from its ConfigMap (`config.phase.{namespace,name,key}`), watched and applied without restart.
 *
 * - A valid value is the phase. A ConfigMap that does not exist means `config.phase.initial`: the phase is a function
 *   of what is stored, so replicas started at different times agree.
 * - An invalid or missing key, or an API that cannot be read, keeps the last known phase and reports it stale
 *   (exported as `phase_config_stale`) until a valid read.
 * - `known()` is false until the first valid read; the webhook is not ready before that, and `report` says no phase.
 */
export class PhaseSource implements PhaseView {
  private phase: Phase;
  private isKnown = false;
  private knownWaiters: Array<() => void> = [];
  private readonly listeners = new Set<PhaseListener>();
  private readonly informer: Informer<PhaseConfigMap, PhaseEntry>;
  private readonly key: string;
  private readonly log: Logger;

  constructor(private readonly options: PhaseSourceOptions) {
    const { config, api, logger, sleep, random } = options;
    const { namespace, name, key } = config.phase;
    this.phase = config.phase.initial;
    this.key = `${namespace}/${name}`;
    this.log = logger.child({ component: 'phase-source', configMap: this.key });
    this.report(false);
    this.informer = new Informer<PhaseConfigMap, PhaseEntry>({
      name: 'phase-configmap',
      api,
      path: phaseCollectionPath(config.phase),
      // Only the phase ConfigMap: the namespace also holds the sync's tombstones, rewritten after its passes.
      fieldSelector: `metadata.name=${name}`,
      pageSize: 50,
      relistSeconds: config.sync.relistSeconds,
      stallSeconds: config.sync.stallSeconds,
      logger: this.log,
      transform: (cm) =>
        cm.metadata.name === name ? { value: cm.data?.[key], resourceVersion: cm.metadata.resourceVersion } : undefined,
      onChange: (ns, objectName, entry) => {
        if (ns === namespace && objectName === name) this.apply(entry);
      },
      onSynced: () => {
        if (!this.informer.store.has(namespace, name)) this.apply(undefined);
      },
      onError: (stage, err) => this.markStale({ stage, err: describeApiError(err) }),
      ...(sleep ? { sleep } : {}),
      ...(random ? { random } : {}),
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

  private report(stale: boolean): void {
    this.options.report?.({ phase: this.isKnown ? this.phase : undefined, stale });
  }

  private apply(entry: PhaseEntry | undefined): void {
    const { initial, key } = this.options.config.phase;
    if (entry === undefined) {
      if (!this.isKnown || this.phase !== initial) {
        this.log.warn({ phase: initial }, 'phase ConfigMap not found, using the initial phase');
      }
      this.settle(initial, undefined);
      return;
    }
    if (!isPhase(entry.value)) {
      this.markStale({
        value: entry.value ?? null,
        key,
        resourceVersion: entry.resourceVersion,
      });
      return;
    }
    this.settle(entry.value, entry.resourceVersion);
  }

  private settle(next: Phase, resourceVersion: string | undefined): void {
    const wasKnown = this.isKnown;
    const previous = this.phase;
    this.phase = next;
    this.isKnown = true;
    this.report(false);
    for (const resolve of this.knownWaiters.splice(0)) resolve();
    // The first read is not a change: until then the phase was not known, only assumed (`phase.initial`).
    if (!wasKnown) this.log.debug({ phase: next, resourceVersion }, 'phase read');
    if (next === previous) return;
    if (wasKnown) this.log.info({ from: previous, to: next, resourceVersion }, 'phase changed');
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (err) {
        this.log.error({ err }, 'phase listener failed');
      }
    }
  }

  private markStale(details: Record<string, unknown>): void {
    this.report(true);
    this.log.warn(
      { ...details, phase: this.phase, known: this.isKnown },
      'phase cannot be read, keeping the last known phase',
    );
  }
}
