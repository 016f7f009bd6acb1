import type { EmailOption, JobType, MountOption } from '../jobs/index.js';

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

export const ANNOTATIONS = {
  cronExpression: 'jobs.toolforge.org/cron-expression',
  instantiate: 'cronjob.kubernetes.io/instantiate',
  restartedAt: 'app.kubernetes.io/restartedAt',
} as const;

export const MANAGED_BY_JOBS_FRAMEWORK = 'toolforge-jobs-framework';
export const MANAGED_BY_WEBSERVICE = 'webservice';
export const CURRENT_VERSION = '2';

/** The `component` label value per job type; the pre-release era used "tool" for all. */
export const COMPONENT_BY_TYPE: Readonly<Record<JobType, string>> = {
  'one-off': 'jobs',
  scheduled: 'cronjobs',
  continuous: 'deployments',
};

export const KIND_BY_TYPE: Readonly<Record<JobType, 'Job' | 'CronJob' | 'Deployment'>> = {
  'one-off': 'Job',
  scheduled: 'CronJob',
  continuous: 'Deployment',
};

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
  if (o.type) labels[LABELS.component] = COMPONENT_BY_TYPE[o.type];
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
