import type { Config } from '../config/schema.js';
import type { KubeApi } from '../k8s/api.js';
import { Gate } from '../k8s/gate.js';
import { Informer } from '../k8s/informer.js';
import { LeaderElector } from '../k8s/lease.js';
import { collectionPath, SERVICES } from '../k8s/paths.js';
import type { ApiResource } from '../k8s/paths.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { WORKLOAD_KINDS } from '../runtime/kinds.js';
import type { WorkloadKind } from '../runtime/kinds.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from '../runtime/labels.js';
import { STORAGE_KINDS } from '../storage/kinds.js';
import { crEntry, entryResourceVersion, readWorkloadEntry, SERVICE } from './entries.js';
import type { EntryContext, EntryRead } from './entries.js';
import type { Inventory, Resource } from './inventory.js';
import type { JobFingerprint } from './reconcile.js';

/** What the sync reads of every listed object before its entry is made. */
export interface WatchedObject {
  metadata?: { namespace?: string; resourceVersion?: string };
}

interface Watched {
  resource: Resource;
  api: ApiResource;
  read: 'workload' | 'service' | 'cr';
  labelSelector?: string;
}

/** The names of the CR informers (`Informer.name`). */
export const CR_RESOURCES: ReadonlySet<string> = new Set(STORAGE_KINDS.map((k) => k.plural));

/** The workloads a stored job becomes (one-off Jobs are not stored). */
const isWatchedWorkload = (k: WorkloadKind): k is WorkloadKind & { plural: 'cronjobs' | 'deployments' } =>
  k.plural === 'cronjobs' || k.plural === 'deployments';

/**
 * Listed and watched in this order, across all namespaces. The CRs come first: a workload read while its CR is not
 * yet listed looks like a backfill candidate, whose job the import keeps until the CR arrives (Candidates.hold).
 */
const WATCHED: readonly Watched[] = [
  ...STORAGE_KINDS.map((k): Watched => ({ resource: k.plural, api: k, read: 'cr' })),
  ...WORKLOAD_KINDS.filter(isWatchedWorkload).map((k): Watched => ({ resource: k.plural, api: k, read: 'workload' })),
  {
    resource: 'services',
    api: SERVICES,
    read: 'service',
    labelSelector: `${LABELS.managedBy}=${MANAGED_BY_JOBS_FRAMEWORK}`,
  },
];

const SERVICE_READ: EntryRead = Object.freeze({ entry: SERVICE, job: undefined });

/**
 * One informer per watched resource, each feeding the inventory: an object becomes its entry once (a relist keeps
 * the entries whose resourceVersion is unchanged), and the lists share one gate on pages in flight. A workload's
 * job goes with its entry to the inventory, which keeps it while the workload is a backfill candidate.
 */
export function watchInventory(o: {
  api: KubeApi;
  config: Config;
  logger: Logger;
  metrics: SyncMetrics;
  inventory: Inventory;
  entries: EntryContext<JobFingerprint>;
  /** After every change the inventory took (the loop reconciles the tool promptly). */
  changed?: () => void;
  /** false: the CRs are listed once and not watched (the one-shot import, docs/adr/0005). Default true. */
  watchCrs?: boolean;
}): Array<Informer<WatchedObject, EntryRead>> {
  const { config, entries, inventory } = o;
  const listGate = new Gate(config.sync.listConcurrency);
  const relistGate = new Gate(1);
  const readers: Record<Watched['read'], (obj: WatchedObject) => EntryRead | undefined> = {
    workload: (obj) => readWorkloadEntry(obj, entries),
    cr: (obj) => {
      const entry = crEntry(obj, entries);
      return entry && { entry, job: undefined };
    },
    service: (obj) => (entries.namesOf(obj.metadata?.namespace ?? '') ? SERVICE_READ : undefined),
  };
  return WATCHED.map(
    (w) =>
      new Informer<WatchedObject, EntryRead>({
        name: w.resource,
        api: o.api,
        path: collectionPath(w.api),
        ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
        ...(w.read === 'cr' && o.watchCrs === false ? { watch: false } : {}),
        pageSize: config.sync.listPageSize,
        listGate,
        relistGate,
        relistSeconds: config.sync.relistSeconds,
        stallSeconds: config.sync.stallSeconds,
        logger: o.logger,
        transform: readers[w.read],
        unchanged: (obj, previous) => {
          const rv = obj.metadata?.resourceVersion;
          return rv !== undefined && rv === entryResourceVersion(previous.entry);
        },
        onChange: (namespace, name, read) => {
          inventory.apply(w.resource, namespace, name, read?.entry, read?.job);
          // The job is the inventory's to keep or drop: the informer's store keeps only the entry.
          if (read?.job !== undefined) read.job = undefined;
          o.changed?.();
        },
        onError: (stage) => o.metrics.syncErrors.inc({ stage }),
      }),
  );
}

/** The Lease campaign that makes one replica the writer; `leading` hears when it starts (true) and stops. */
export function leaseElector(
  o: { api: KubeApi; config: Config; logger: Logger; identity: string },
  leading: (yes: boolean) => void,
): LeaderElector {
  const { sync } = o.config;
  return new LeaderElector({
    api: o.api,
    namespace: sync.leaseNamespace,
    name: sync.leaseName,
    identity: o.identity,
    leaseDurationSeconds: sync.leaseDurationSeconds,
    renewDeadlineSeconds: sync.renewDeadlineSeconds,
    retryPeriodSeconds: sync.retryPeriodSeconds,
    logger: o.logger,
    onStartedLeading: () => leading(true),
    onStoppedLeading: () => leading(false),
  });
}
