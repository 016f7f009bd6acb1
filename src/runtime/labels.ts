import type { EmailOption, JobType, MountOption } from '../jobs/index.js';
import { workloadKindForJobType } from './kinds.js';

export const LABELS = {
  toolforge: 'toolforge',
  managedBy: 'app.kubernetes.io/managed-by',
  createdBy: 'app.kubernetes.io/created-by',
  version: 'app.kubernetes.io/version',
  component: 'app.kubernetes.io/component',
  name: 'app.kubernetes.io/name',
  filelog: 'jobs.toolforge.org/filelog',
  emails: 'jobs.toolforge.org/emails',
  mount: 'toolforge.org/mount-storage',
  commandNewFormat: 'jobs.toolforge.org/command-new-format',
} as const;

/** Annotations jobs-api and Kubernetes put on workloads. */
export const WORKLOAD_ANNOTATIONS = {
  cronExpression: 'jobs.toolforge.org/cron-expression',
  instantiate: 'cronjob.kubernetes.io/instantiate',
  restartedAt: 'app.kubernetes.io/restartedAt',
} as const;

export const MANAGED_BY_JOBS_FRAMEWORK = 'toolforge-jobs-framework';
export const MANAGED_BY_WEBSERVICE = 'webservice';
export const CURRENT_VERSION = '2';

export interface LabelOptions {
  tool: string;
  job?: string;
  type?: JobType;
  filelog?: boolean;
  emails?: EmailOption;
  mount?: MountOption;
  version?: boolean;
}

/** jobs-api `generate_labels`, keys in the same order. */
export function generateLabels(o: LabelOptions): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.toolforge]: 'tool',
    [LABELS.managedBy]: MANAGED_BY_JOBS_FRAMEWORK,
    [LABELS.createdBy]: o.tool,
  };
  if (o.version ?? true) labels[LABELS.version] = CURRENT_VERSION;
  if (o.type) labels[LABELS.component] = workloadKindForJobType(o.type).component;
  if (o.job !== undefined) labels[LABELS.name] = o.job;
  if (o.filelog === true) labels[LABELS.filelog] = 'yes';
  if (o.emails) labels[LABELS.emails] = o.emails;
  if (o.mount) labels[LABELS.mount] = o.mount;
  return labels;
}

/** jobs-api `labels_selector`: how it finds a tool's jobs (no version, so v1 and v2 objects both match). */
export function labelSelector(tool: string, job?: string, type?: JobType): Record<string, string> {
  return generateLabels({
    tool,
    ...(job === undefined ? {} : { job }),
    ...(type ? { type } : {}),
    version: false,
  });
}
