import { DEFAULT_TOOL_NAMESPACE_PREFIX, toolOfNamespace } from '../jobs/tenancy.js';
import { detectEra, versionOf, type EraId } from './eras.js';
import { workloadKindOf } from './kinds.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK, MANAGED_BY_WEBSERVICE, WORKLOAD_ANNOTATIONS } from './labels.js';
import { isObject, type KObject } from './object.js';

/** What a Kubernetes object in a tool namespace is, from the jobs framework's point of view. */
export type WorkloadClass =
  | {
      kind: 'job';
      jobType: 'scheduled' | 'continuous';
      name: string;
      tool: string;
      era: EraId;
      reason: string;
    }
  | {
      kind: 'one-off-job';
      jobType: 'one-off';
      name: string;
      tool: string;
      era: EraId;
      reason: string;
    }
  | { kind: 'job-service'; jobName: string; tool: string; reason: string }
  | {
      kind: 'cronjob-run';
      cronJobName: string;
      manual: boolean;
      reason: string;
    }
  | { kind: 'webservice'; reason: string }
  | { kind: 'foreign'; jobsFrameworkLabels: boolean; reason: string }
  | { kind: 'unsupported'; reason: string };

function record(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function ownerCronJob(metadata: KObject): string | undefined {
  const owners = metadata['ownerReferences'];
  if (!Array.isArray(owners)) return undefined;
  for (const owner of owners) {
    if (isObject(owner) && owner['kind'] === 'CronJob' && typeof owner['name'] === 'string') return owner['name'];
  }
  return undefined;
}

function firstCommand(obj: KObject): string[] {
  const spec = isObject(obj['spec']) ? obj['spec'] : {};
  const podOwner =
    obj['kind'] === 'CronJob' && isObject(spec['jobTemplate']) && isObject(spec['jobTemplate']['spec'])
      ? spec['jobTemplate']['spec']
      : spec;
  const template = isObject(podOwner['template']) ? podOwner['template'] : {};
  const podSpec = isObject(template['spec']) ? template['spec'] : {};
  const containers = Array.isArray(podSpec['containers']) ? podSpec['containers'] : [];
  const first: unknown = containers[0];
  const command = isObject(first) && Array.isArray(first['command']) ? first['command'] : [];
  return command.filter((c): c is string => typeof c === 'string');
}

function jobsFrameworkObject(
  obj: KObject,
  kind: string,
  name: string,
  tool: string,
  labels: Record<string, string>,
): WorkloadClass {
  const component = labels[LABELS.component];
  if (kind === 'Service') {
    const jobName = labels[LABELS.name] ?? name;
    return {
      kind: 'job-service',
      jobName,
      tool,
      reason: `Service of continuous job '${jobName}'`,
    };
  }
  const row = workloadKindOf(kind);
  if (row === undefined)
    return {
      kind: 'unsupported',
      reason: `${kind} carrying jobs-framework labels is not a job definition`,
    };
  const jobType = row.jobType;
  if (component !== row.component && component !== 'tool') {
    return {
      kind: 'foreign',
      jobsFrameworkLabels: true,
      reason: `${kind} with jobs-framework labels but component '${component ?? ''}': jobs-api never lists it as a job`,
    };
  }
  const era = detectEra({
    labels,
    version: versionOf(labels) ?? 2,
    command: firstCommand(obj),
  }).id;
  if (jobType === 'one-off') {
    return {
      kind: 'one-off-job',
      jobType,
      name,
      tool,
      era,
      reason: `one-off job '${name}' (${era}); jobs-api does not store one-off jobs`,
    };
  }
  return {
    kind: 'job',
    jobType,
    name,
    tool,
    era,
    reason: `${jobType} job '${name}' written by jobs-api (${era})`,
  };
}

/** The tool a workload belongs to: its namespace's, else (outside any tool namespace) its created-by label. */
function toolOfWorkload(namespace: string, prefix: string, labels: Record<string, string>): string {
  return toolOfNamespace(namespace, prefix, { jobsApiFallback: true }) ?? labels[LABELS.createdBy] ?? '';
}

/** Never throws: anything that is not a recognisable object is 'unsupported'. */
export function classifyWorkload(obj: unknown, namespacePrefix = DEFAULT_TOOL_NAMESPACE_PREFIX): WorkloadClass {
  if (!isObject(obj) || typeof obj['kind'] !== 'string')
    return { kind: 'unsupported', reason: 'not a Kubernetes object (no kind)' };
  const kind = obj['kind'];
  const metadata = isObject(obj['metadata']) ? obj['metadata'] : {};
  const labels = record(metadata['labels']);
  const annotations = record(metadata['annotations']);
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : '';
  const namespace = typeof metadata['namespace'] === 'string' ? metadata['namespace'] : '';
  const tool = toolOfWorkload(namespace, namespacePrefix, labels);

  const cronJob = kind === 'Job' ? ownerCronJob(metadata) : undefined;
  if (cronJob !== undefined) {
    const manual = annotations[WORKLOAD_ANNOTATIONS.instantiate] === 'manual';
    return {
      kind: 'cronjob-run',
      cronJobName: cronJob,
      manual,
      reason: manual
        ? `manual run of CronJob '${cronJob}' (restart / run now)`
        : `scheduled run of CronJob '${cronJob}', created by the CronJob controller`,
    };
  }
  if (labels[LABELS.managedBy] === MANAGED_BY_WEBSERVICE)
    return { kind: 'webservice', reason: `${kind} managed by webservice` };
  if (labels[LABELS.managedBy] === MANAGED_BY_JOBS_FRAMEWORK) return jobsFrameworkObject(obj, kind, name, tool, labels);
  if (workloadKindOf(kind) !== undefined || kind === 'Service') {
    return {
      kind: 'foreign',
      jobsFrameworkLabels: false,
      reason: `${kind} without jobs-framework labels (created outside jobs-api)`,
    };
  }
  return {
    kind: 'unsupported',
    reason: `kind ${kind} is not a workload the jobs framework writes`,
  };
}
