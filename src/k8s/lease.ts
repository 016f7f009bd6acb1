import type { Logger } from '../log/logger.js';
import type { KubeApi } from './api.js';
import { describeApiError, isConflict, isNotFound } from './errors.js';
import { LEASES, collectionPath, objectPath } from './paths.js';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface LeaderElectorOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  now?: () => number;
}

/**
 * Leader election on a coordination.k8s.io Lease, following client-go's rules: another holder's lease is respected
 * until it has not changed for leaseDuration on our own clock; a leader that cannot renew within renewDeadline steps
 * down; updates carry the resourceVersion, so two candidates cannot both win a takeover.
 */
export class LeaderElector {
  private leading = false;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(private readonly options: LeaderElectorOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The Lease itself; it is created in its namespace's collection. */
  private get path(): string {
    return objectPath(LEASES, this.options.namespace, this.options.name);
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.step().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.options.retryPeriodSeconds * 1000);
      });
    };
    tick();
    // Independent of any request in flight: a leader that has not renewed within the deadline stops acting, even
    // while its renewal is still hanging.
    this.watchdog = setInterval(
      () => {
        if (this.leading && this.now() - this.lastRenew >= this.options.renewDeadlineSeconds * 1000)
          this.setLeading(false);
      },
      Math.max(50, (this.options.retryPeriodSeconds * 1000) / 2),
    );
    this.watchdog.unref();
  }

  /** Stops at once without releasing the lease, as a crashed process would; followers wait for it to expire. */
  abandon(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.leading = false;
  }

  /** Stops campaigning; a leader releases the lease so a follower takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.watchdog);
    await this.running;
    if (!this.leading) return;
    try {
      const lease = await this.options.api.request<Lease>('GET', this.path);
      if (lease.spec.holderIdentity === this.options.identity) {
        const spec = { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(this.now()) };
        await this.options.api.request('PUT', this.path, { body: { ...lease, spec } });
      }
    } catch (err) {
      this.options.logger.warn({ err: describeApiError(err) }, 'lease release failed');
    }
    this.setLeading(false);
  }

  private setLeading(value: boolean): void {
    if (value === this.leading) return;
    this.leading = value;
    this.options.logger.info(
      { identity: this.options.identity, lease: `${this.options.namespace}/${this.options.name}`, leading: value },
      'leadership changed',
    );
    if (value) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  /**
   * One campaign step. The renewal time that counts is when the request was sent (what the Lease records), never
   * when the answer came back, so a slow answer cannot stretch this replica's view of its own lease.
   */
  private async step(): Promise<void> {
    const sentAt = this.now();
    try {
      const outcome = await this.tryAcquireOrRenew(sentAt);
      if (this.stopped) return;
      if (outcome === 'held') this.lastRenew = sentAt;
      const withinDeadline = this.now() - this.lastRenew < this.options.renewDeadlineSeconds * 1000;
      this.setLeading((outcome === 'held' || (outcome === 'unknown' && this.leading)) && withinDeadline);
    } catch (err) {
      if (this.stopped) return;
      this.options.logger.warn({ err: describeApiError(err) }, 'lease update failed');
      if (this.leading && this.now() - this.lastRenew >= this.options.renewDeadlineSeconds * 1000)
        this.setLeading(false);
    }
  }

  /** 'held': we hold the Lease now; 'other': someone else does; 'unknown': a write lost a race (409), retry. */
  private async tryAcquireOrRenew(now: number): Promise<'held' | 'other' | 'unknown'> {
    const timeoutMs = Math.max(1000, (this.options.renewDeadlineSeconds * 1000) / 2);
    let lease: Lease;
    try {
      lease = await this.options.api.request<Lease>('GET', this.path, { timeoutMs });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return (await this.create(now, timeoutMs)) ? 'held' : 'unknown';
    }
    const spec = lease.spec;
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = spec.holderIdentity ?? '';
    const duration = (spec.leaseDurationSeconds ?? this.options.leaseDurationSeconds) * 1000;
    if (holder && holder !== this.options.identity && now - this.observed.at < duration) return 'other';
    const next = this.renewedSpec(spec, holder === this.options.identity, now);
    try {
      await this.options.api.request('PUT', this.path, { body: { ...lease, spec: next }, timeoutMs });
    } catch (err) {
      if (isConflict(err)) return 'unknown';
      throw err;
    }
    return 'held';
  }

  /** The spec that makes this replica the holder: a renewal keeps the acquire time, a takeover counts a transition. */
  private renewedSpec(spec: Lease['spec'], renewal: boolean, now: number): Lease['spec'] {
    const transitions = spec.leaseTransitions ?? 0;
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: this.options.leaseDurationSeconds,
      acquireTime: renewal ? (spec.acquireTime ?? microTime(now)) : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: renewal ? transitions : transitions + 1,
    };
  }

  private async create(now: number, timeoutMs: number): Promise<boolean> {
    const lease: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: this.options.leaseDurationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      },
    };
    try {
      await this.options.api.request('POST', collectionPath(LEASES, this.options.namespace), {
        body: lease,
        timeoutMs,
      });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
