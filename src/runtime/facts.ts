import { DEFAULT_TOOL_NAMESPACE_PREFIX, toolOfNamespace } from '../jobs/tenancy.js';
import { detectEra, versionOf } from './eras.js';
import type { WorkloadEra } from './eras.js';
import { workloadKindOf } from './kinds.js';
import type { WorkloadKind } from './kinds.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from './labels.js';
import { isObject } from './object.js';
import { firstCommand } from './pod.js';
import type { KObject } from './object.js';

/**
 * What classifying and parsing a workload both start from, found once per object (see runtime/read). Lenient: an
 * ill-typed field reads as absent here; the parser still checks every field it reads and names the one at fault.
 */
export interface WorkloadFacts {
  kind: string;
  /** The kind's row in WORKLOAD_KINDS; undefined for a kind jobs-api does not write. */
  workload: WorkloadKind | undefined;
  metadata: KObject;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The tool of the namespace: the configured prefix, jobs-api's first-dash reading as the fallback. */
  namespaceTool: string | undefined;
  /** For a Job, the CronJob that owns it: a run of that CronJob, not a job definition. */
  cronJobOwner: string | undefined;
  /** The era of a jobs-framework CronJob, Deployment or Job (undefined for anything else). */
  era: Omit<WorkloadEra, 'features'> | undefined;
}

function record(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The CronJob named in a Job's owner references, if any. */
export function ownerCronJob(metadata: KObject): string | undefined {
  const owners = metadata['ownerReferences'];
  if (!Array.isArray(owners)) return undefined;
  for (const owner of owners) {
    if (isObject(owner) && owner['kind'] === 'CronJob' && typeof owner['name'] === 'string') return owner['name'];
  }
  return undefined;
}

/** The facts of an object, or undefined when it is not a Kubernetes object (no kind). */
export function workloadFacts(
  obj: unknown,
  namespacePrefix = DEFAULT_TOOL_NAMESPACE_PREFIX,
): WorkloadFacts | undefined {
  if (!isObject(obj) || typeof obj['kind'] !== 'string') return undefined;
  const kind = obj['kind'];
  const workload = workloadKindOf(kind);
  const metadata = isObject(obj['metadata']) ? obj['metadata'] : {};
  const labels = record(metadata['labels']);
  const namespace = typeof metadata['namespace'] === 'string' ? metadata['namespace'] : '';
  const jobsFramework = workload !== undefined && labels[LABELS.managedBy] === MANAGED_BY_JOBS_FRAMEWORK;
  return {
    kind,
    workload,
    metadata,
    name: typeof metadata['name'] === 'string' ? metadata['name'] : '',
    namespace,
    labels,
    annotations: record(metadata['annotations']),
    namespaceTool: toolOfNamespace(namespace, namespacePrefix, { jobsApiFallback: true }),
    cronJobOwner: kind === 'Job' ? ownerCronJob(metadata) : undefined,
    era: jobsFramework ? detectEra({ labels, version: versionOf(labels) ?? 2, command: firstCommand(obj) }) : undefined,
  };
}
