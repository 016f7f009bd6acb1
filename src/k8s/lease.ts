import type { Logger } from '../log/logger.js';
import type { KubeApi } from './api.js';
import { describeApiError, isConflict, isNotFound } from './errors.js';

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
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(private readonly o: LeaderElectorOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`;
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.step().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.o.retryPeriodSeconds * 1000);
      });
    };
    tick();
  }

  /** Stops at once without releasing the lease, as a crashed process would; followers wait for it to expire. */
  abandon(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.leading = false;
  }

  /** Stops campaigning; a leader releases the lease so a follower takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (!this.leading) return;
    try {
      const lease = await this.o.api.request<Lease>('GET', `${this.path}/${this.o.name}`);
      if (lease.spec.holderIdentity === this.o.identity) {
        const spec = { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(this.now()) };
        await this.o.api.request('PUT', `${this.path}/${this.o.name}`, { body: { ...lease, spec } });
      }
    } catch (err) {
      this.o.logger.warn({ err: describeApiError(err) }, 'lease release failed');
    }
    this.setLeading(false);
  }

  private setLeading(value: boolean): void {
    if (value === this.leading) return;
    this.leading = value;
    this.o.logger.info(
      { identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}`, leading: value },
      'leadership changed',
    );
    if (value) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  private async step(): Promise<void> {
    try {
      const won = await this.tryAcquireOrRenew();
      if (won) this.lastRenew = this.now();
      this.setLeading(won || (this.leading && this.now() - this.lastRenew < this.o.renewDeadlineSeconds * 1000));
    } catch (err) {
      this.o.logger.warn({ err: describeApiError(err) }, 'lease update failed');
      if (this.leading && this.now() - this.lastRenew >= this.o.renewDeadlineSeconds * 1000) this.setLeading(false);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    let lease: Lease;
    try {
      lease = await this.o.api.request<Lease>('GET', `${this.path}/${this.o.name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return this.create(now);
    }
    const spec = lease.spec;
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = spec.holderIdentity ?? '';
    const duration = (spec.leaseDurationSeconds ?? this.o.leaseDurationSeconds) * 1000;
    if (holder && holder !== this.o.identity && now - this.observed.at < duration) return false;
    const next: Lease['spec'] = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: this.o.leaseDurationSeconds,
      acquireTime: holder === this.o.identity ? (spec.acquireTime ?? microTime(now)) : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: holder === this.o.identity ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    try {
      await this.o.api.request('PUT', `${this.path}/${this.o.name}`, { body: { ...lease, spec: next } });
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    return true;
  }

  private async create(now: number): Promise<boolean> {
    const lease: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.o.leaseDurationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      },
    };
    try {
      await this.o.api.request('POST', this.path, { body: lease });
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
