import type { JobType } from '../jobs/model.js';

/** jobs-api's storage API group and version (upstream chart `crds/`). */
export const STORAGE_GROUP = 'jobs-api.toolforge.org' as const;
export const STORAGE_VERSION = 'v1' as const;
export const STORAGE_API_VERSION = `${STORAGE_GROUP}/${STORAGE_VERSION}`;
export const STORAGE_CATEGORY = 'toolforge-jobs';

/** A job CR kind; `group`/`version`/`plural` are its `ApiResource` (k8s/paths). The twin of runtime/kinds. */
export interface StorageKind {
  kind: 'ScheduledJob' | 'ContinuousJob';
  group: typeof STORAGE_GROUP;
  version: typeof STORAGE_VERSION;
  plural: 'scheduled-jobs' | 'continuous-jobs';
  singular: 'scheduled-job' | 'continuous-job';
  jobType: 'scheduled' | 'continuous';
}

export const STORAGE_KINDS: readonly StorageKind[] = [
  {
    kind: 'ScheduledJob',
    group: STORAGE_GROUP,
    version: STORAGE_VERSION,
    plural: 'scheduled-jobs',
    singular: 'scheduled-job',
    jobType: 'scheduled',
  },
  {
    kind: 'ContinuousJob',
    group: STORAGE_GROUP,
    version: STORAGE_VERSION,
    plural: 'continuous-jobs',
    singular: 'continuous-job',
    jobType: 'continuous',
  },
];

/**
 * Every plural of the group, including ones jobs-api has no CRD for today (`one-off-jobs` exists in its RBAC;
 * `webservice-jobs` in its newest code). Protection covers all of them.
 */
export const ALL_STORAGE_PLURALS = ['scheduled-jobs', 'continuous-jobs', 'one-off-jobs', 'webservice-jobs'] as const;

export function storageKindForJobType(jobType: JobType): StorageKind | undefined {
  return STORAGE_KINDS.find((k) => k.jobType === jobType);
}

export function storageKindForKind(kind: string): StorageKind | undefined {
  return STORAGE_KINDS.find((k) => k.kind === kind);
}

/** Annotations this project adds to CRs; never spec fields, which jobs-api validates with `extra=forbid`. */
export const ANNOTATION_PREFIX = 'jobs-storage.toolforge.org/';
export const PROVENANCE_ANNOTATIONS = {
  backfilledBy: `${ANNOTATION_PREFIX}backfilled-by`,
  backfilledAt: `${ANNOTATION_PREFIX}backfilled-at`,
  /** JSON map kind/name → resourceVersion of the workloads the CR was made from or last seen in sync with. */
  sourceVersions: `${ANNOTATION_PREFIX}source-resource-versions`,
  /** The spec schema version; absent means the current one. */
  specVersion: `${ANNOTATION_PREFIX}spec-version`,
} as const;

/** The provenance annotation recording the workload a CR was made from, at the resourceVersion it was read. */
export function sourceVersionsAnnotation(kind: string, name: string, resourceVersion: string): Record<string, string> {
  return { [PROVENANCE_ANNOTATIONS.sourceVersions]: JSON.stringify({ [`${kind}/${name}`]: resourceVersion }) };
}
