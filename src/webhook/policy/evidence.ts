import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from '../../runtime/labels.js';
import type { AdmissionRequest, KubeObject, ManagedFieldsEntry } from '../review.js';

/** Entries ending in ':' are prefixes (`system:serviceaccount:kube-system:`), the others exact usernames. */
export function matchesIdentity(username: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith(':') ? username.startsWith(p) : username === p));
}

/**
 * Kubernetes components authenticate as `system:<component>` or `system:node:<node>`; ServiceAccounts (a tool's own
 * included) and anonymous requests are not components.
 */
export function isSystemComponent(username: string): boolean {
  return (
    username.startsWith('system:') && !username.startsWith('system:serviceaccount:') && username !== 'system:anonymous'
  );
}

export function breakGlassGroup(request: AdmissionRequest, groups: readonly string[]): string | undefined {
  return request.userInfo.groups?.find((g) => groups.includes(g));
}

/** The object the request is about: the new one, or for DELETE the one being deleted. */
export function subjectObject(request: AdmissionRequest): KubeObject | undefined {
  return (request.operation === 'DELETE' ? request.oldObject : request.object) ?? undefined;
}

export function objectName(request: AdmissionRequest): string {
  return request.name || subjectObject(request)?.metadata?.name || '';
}

/**
 * A Job run by a CronJob (on schedule or `kubectl create job --from`): the only controller-owned kind in the jobs
 * framework. Ownership of anything else is not trusted: an ownerReference is written by the requester, so a forged
 * one must not hide an imitation of an API job (a labelled Deployment or CronJob) from counting or from `enforce`.
 */
export function isCronJobRun(obj: KubeObject | undefined): boolean {
  return (
    obj?.kind === 'Job' &&
    (obj.metadata?.ownerReferences?.some((ref) => ref.controller === true && ref.kind === 'CronJob') ?? false)
  );
}

export function labelOf(obj: KubeObject | null | undefined, key: string): string | undefined {
  return obj?.metadata?.labels?.[key];
}

/** A `deployments/scale` write (`kubectl scale`): the review's objects are autoscaling/v1 Scales, without labels. */
export function isDeploymentScale(request: AdmissionRequest): boolean {
  return (
    request.subResource === 'scale' && request.resource.group === 'apps' && request.resource.resource === 'deployments'
  );
}

/** The label selector a Scale reports in `status.selector` (`k=v,k2=v2`, as kube-apiserver serialises it). */
function scaleSelector(obj: KubeObject | null | undefined): string | undefined {
  const status = obj?.['status'];
  if (typeof status !== 'object' || status === null) return undefined;
  const selector = (status as { selector?: unknown }).selector;
  return typeof selector === 'string' ? selector : undefined;
}

/** True when a serialised selector requires `key=value` (also written `key==value` or `key in (value)`). */
export function selectorRequires(selector: string, key: string, value: string): boolean {
  return selector
    .split(/,(?![^(]*\))/)
    .map((r) => r.trim())
    .some((r) => r === `${key}=${value}` || r === `${key}==${value}` || r === `${key} in (${value})`);
}

/**
 * Carries the jobs framework's labels, in the new object or (UPDATE, DELETE) the old one. A Scale has no labels; its
 * Deployment's selector does: every jobs-api era selects on `managed-by: toolforge-jobs-framework` (domain §1.1).
 * The old Scale is the apiserver's own reading of the Deployment, so a client cannot hide the selector by sending a
 * Scale without a status.
 */
export function isJobsFrameworkWorkload(request: AdmissionRequest): boolean {
  if (isDeploymentScale(request)) {
    return [request.object, request.oldObject].some((obj) => {
      const selector = scaleSelector(obj);
      return selector !== undefined && selectorRequires(selector, LABELS.managedBy, MANAGED_BY_JOBS_FRAMEWORK);
    });
  }
  return (
    labelOf(request.object, LABELS.managedBy) === MANAGED_BY_JOBS_FRAMEWORK ||
    labelOf(request.oldObject, LABELS.managedBy) === MANAGED_BY_JOBS_FRAMEWORK
  );
}

function writeEntries(obj: KubeObject | null | undefined): ManagedFieldsEntry[] {
  return (obj?.metadata?.managedFields ?? []).filter(
    (e) => typeof e.manager === 'string' && (e.operation === 'Update' || e.operation === 'Apply') && !e.subresource,
  );
}

function sameEntry(a: ManagedFieldsEntry, b: ManagedFieldsEntry): boolean {
  return a.manager === b.manager && a.operation === b.operation && a.time === b.time && a.apiVersion === b.apiVersion;
}

/** Newest by `time` (RFC 3339 in UTC, so string order is time order); on a tie the later entry. */
function newest(entries: readonly ManagedFieldsEntry[]): ManagedFieldsEntry | undefined {
  let best: ManagedFieldsEntry | undefined;
  for (const e of entries) if (best === undefined || (e.time ?? '') >= (best.time ?? '')) best = e;
  return best;
}

/**
 * The field manager of this CREATE or UPDATE: `options.fieldManager` when the client set one, else the managedFields
 * entry this request added or touched (the apiserver fills it from the User-Agent before admission), else the newest.
 *
 * Why this is evidence, not proof: any client can send `--field-manager` or a User-Agent of its choosing, so a
 * kubectl user can pass as jobs-api here. The count is a signal for outreach; the sync's inventory of what actually
 * exists stays the authority for the per-tool gauges.
 */
export function requestFieldManager(request: AdmissionRequest): string | undefined {
  const fromOptions = request.options?.fieldManager;
  if (typeof fromOptions === 'string' && fromOptions !== '') return fromOptions;
  const entries = writeEntries(request.object);
  if (entries.length === 0) return undefined;
  const before = writeEntries(request.oldObject);
  const touched = entries.filter((e) => !before.some((b) => sameEntry(b, e)));
  return newest(touched.length > 0 ? touched : entries)?.manager;
}

/** Every manager that wrote an object (for DELETE, which carries no field manager of its own). */
export function writers(obj: KubeObject | null | undefined): string[] {
  return writeEntries(obj).map((e) => e.manager as string);
}
