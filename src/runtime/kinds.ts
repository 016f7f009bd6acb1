import type { JobType } from '../jobs/model.js';

/**
 * The workloads jobs-api writes, one row per kind: its API resource (group, version, plural; the shape of
 * `ApiResource` in k8s/paths), the job type it carries and the `app.kubernetes.io/component` label jobs-api gives it.
 * The twin of the storage side's `STORAGE_KINDS`, for workloads.
 */
export interface WorkloadKind {
  kind: 'CronJob' | 'Deployment' | 'Job';
  group: 'batch' | 'apps';
  version: 'v1';
  plural: 'cronjobs' | 'deployments' | 'jobs';
  jobType: JobType;
  component: 'cronjobs' | 'deployments' | 'jobs';
  /** The object holding the pod `template` (and a Job's `backoffLimit`): a CronJob's is its job template's spec. */
  podOwnerPath: 'spec' | 'spec.jobTemplate.spec';
}

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  {
    kind: 'CronJob',
    group: 'batch',
    version: 'v1',
    plural: 'cronjobs',
    jobType: 'scheduled',
    component: 'cronjobs',
    podOwnerPath: 'spec.jobTemplate.spec',
  },
  {
    kind: 'Deployment',
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    jobType: 'continuous',
    component: 'deployments',
    podOwnerPath: 'spec',
  },
  {
    kind: 'Job',
    group: 'batch',
    version: 'v1',
    plural: 'jobs',
    jobType: 'one-off',
    component: 'jobs',
    podOwnerPath: 'spec',
  },
];

/** A workload kind's name: `CronJob`, `Deployment` or `Job`. */
export type WorkloadKindName = WorkloadKind['kind'];

/** The workloads a job can become, as `group/plural` (batch Jobs and CronJobs, apps Deployments). */
export const WORKLOAD_RESOURCES: ReadonlySet<string> = new Set(WORKLOAD_KINDS.map((k) => `${k.group}/${k.plural}`));

const BY_KIND: ReadonlyMap<string, WorkloadKind> = new Map(WORKLOAD_KINDS.map((k) => [k.kind, k]));
const BY_TYPE: ReadonlyMap<JobType, WorkloadKind> = new Map(WORKLOAD_KINDS.map((k) => [k.jobType, k]));

/** The row of a workload kind (`CronJob`, `Deployment`, `Job`), or undefined for any other kind. */
export function workloadKindOf(kind: string): WorkloadKind | undefined {
  return BY_KIND.get(kind);
}

/** The workload a job type becomes. */
export function workloadKindForJobType(jobType: JobType): WorkloadKind {
  const row = BY_TYPE.get(jobType);
  if (!row) throw new TypeError(`no workload kind for job type '${String(jobType)}'`);
  return row;
}
