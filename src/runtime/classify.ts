import { DEFAULT_TOOL_NAMESPACE_PREFIX } from '../jobs/tenancy.js';
import type { EraId } from './eras.js';
import { workloadFacts } from './facts.js';
import type { WorkloadFacts } from './facts.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK, MANAGED_BY_WEBSERVICE, WORKLOAD_ANNOTATIONS } from './labels.js';

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

function jobsFrameworkObject(facts: WorkloadFacts, tool: string): WorkloadClass {
  const { kind, name, labels, workload: row } = facts;
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
  const era = facts.era?.id ?? 'v2';
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

/** Never throws: anything that is not a recognisable object is 'unsupported'. */
export function classifyWorkload(obj: unknown, namespacePrefix = DEFAULT_TOOL_NAMESPACE_PREFIX): WorkloadClass {
  return classifyFacts(workloadFacts(obj, namespacePrefix));
}

/** The class of an object from its facts (see runtime/read); undefined facts are of no Kubernetes object. */
export function classifyFacts(facts: WorkloadFacts | undefined): WorkloadClass {
  if (facts === undefined) return { kind: 'unsupported', reason: 'not a Kubernetes object (no kind)' };
  const { kind, labels, cronJobOwner: cronJob } = facts;
  // Outside any tool namespace, the created-by label names the tool.
  const tool = facts.namespaceTool ?? labels[LABELS.createdBy] ?? '';
  if (cronJob !== undefined) {
    const manual = facts.annotations[WORKLOAD_ANNOTATIONS.instantiate] === 'manual';
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
  if (labels[LABELS.managedBy] === MANAGED_BY_JOBS_FRAMEWORK) return jobsFrameworkObject(facts, tool);
  if (facts.workload !== undefined || kind === 'Service') {
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
