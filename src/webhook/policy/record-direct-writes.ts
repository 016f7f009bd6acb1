import { phaseBehaviour } from '../../phase/behaviour.js';
import { WORKLOAD_RESOURCES } from '../../runtime/kinds.js';
import { LABELS, MANAGED_BY_WEBSERVICE } from '../../runtime/labels.js';
import { toolOfNamespace } from '../../jobs/tenancy.js';
import type { AdmissionRequest } from '../review.js';
import {
  breakGlassGroup,
  isCronJobRun,
  isDeploymentScale,
  isJobsFrameworkWorkload,
  isSystemComponent,
  labelOf,
  writers,
  matchesIdentity,
  objectName,
  requestFieldManager,
  subjectObject,
} from './evidence.js';
import { breakGlassDecision } from './break-glass.js';
import { directWriteWarning, jobsFrameworkDeniedMessage } from './messages.js';
import type { Decision, PolicyContext, WriteSource } from './types.js';

/**
 * Workload writes, and `deployments/scale` (`kubectl scale`), which changes a Deployment as surely as an edit does.
 * Other subresources (status) are written by controllers.
 */
function inScope(request: AdmissionRequest, tool: string | undefined): tool is string {
  return (
    tool !== undefined &&
    request.operation !== 'CONNECT' &&
    (!request.subResource || isDeploymentScale(request)) &&
    WORKLOAD_RESOURCES.has(`${request.resource.group}/${request.resource.resource}`)
  );
}

/** The kind a write is counted and named as: a Scale is its Deployment's. */
function workloadKind(request: AdmissionRequest): string {
  return isDeploymentScale(request) ? 'Deployment' : request.kind.kind;
}

/** A controller identity, or a Job its CronJob runs (see `isCronJobRun` for why other ownership does not count). */
function isController(request: AdmissionRequest, ctx: PolicyContext): boolean {
  const { username } = request.userInfo;
  return (
    matchesIdentity(username, ctx.identities.controllerUsernamePrefixes) ||
    isSystemComponent(username) ||
    isCronJobRun(subjectObject(request))
  );
}

/**
 * jobs-api writes workloads with the tool's own certificate, so the user alone cannot tell it from the tool's
 * kubectl; its field manager can (evidence only, see `requestFieldManager`). Deletes carry no field manager:
 * jobs-api deletes by label selector, which reaches admission once per object with an empty name (kubectl deletes
 * by name, also with -l), and jobs-api wrote the object. Any jobs-api entry counts, not only the newest: a tool that
 * once patched its job with kubectl must not have jobs-api's later delete counted as its own direct write.
 */
function isJobsApi(request: AdmissionRequest, tool: string, manager: string | undefined, ctx: PolicyContext): boolean {
  if (request.userInfo.username !== tool) return false;
  const managers = ctx.identities.jobsApiFieldManagers;
  if (request.operation === 'DELETE')
    return !request.name && writers(request.oldObject).some((w) => managers.includes(w));
  return manager !== undefined && managers.includes(manager);
}

function isKnownClient(request: AdmissionRequest, manager: string | undefined, ctx: PolicyContext): boolean {
  if (labelOf(subjectObject(request), LABELS.managedBy) === MANAGED_BY_WEBSERVICE) return true;
  return manager !== undefined && ctx.identities.knownClientFieldManagers.includes(manager);
}

type Classified =
  | { source: 'out-of-scope' }
  | { source: 'break-glass'; tool: string; group: string }
  | { source: Exclude<WriteSource, 'out-of-scope' | 'break-glass'>; tool: string };

/** Design §4, first match wins. Each fact about the request (tool, group, field manager) is read once. */
function classify(request: AdmissionRequest, ctx: PolicyContext): Classified {
  const tool = toolOfNamespace(request.namespace, ctx.toolNamespacePrefix);
  if (!inScope(request, tool)) return { source: 'out-of-scope' };
  const group = breakGlassGroup(request, ctx.identities.breakGlassGroups);
  if (group !== undefined) return { source: 'break-glass', tool, group };
  if (isController(request, ctx)) return { source: 'controller', tool };
  const manager = request.operation === 'DELETE' ? undefined : requestFieldManager(request);
  if (isJobsApi(request, tool, manager, ctx)) return { source: 'jobs-api', tool };
  if (isKnownClient(request, manager, ctx)) return { source: 'known-client', tool };
  return { source: request.dryRun ? 'dry-run' : 'direct', tool };
}

export function classifyWorkloadWrite(request: AdmissionRequest, ctx: PolicyContext): WriteSource {
  return classify(request, ctx).source;
}

/**
 * Identifies one user write across repeated admission calls: the apiserver assigns name and uid before validating
 * admission, so a retried call for the same CREATE carries the same pair (the request uid differs per call).
 */
function writeKey(request: AdmissionRequest, name: string): string {
  const uid = subjectObject(request)?.metadata?.uid ?? '';
  const { group, resource } = request.resource;
  const sub = request.subResource ? `/${request.subResource}` : '';
  return `${request.operation}/${group}/${resource}${sub}/${request.namespace ?? ''}/${name}/${uid}`;
}

/**
 * A write nobody vouches for. Allowed with a phase-dependent warning and counted once per tool, kind and operation;
 * in a phase that denies them, a workload with jobs-framework labels (an imitation of an API job) is denied instead,
 * and a denial is not a write, so it is not counted. A dry run gets the same answer and is never counted.
 */
function directDecision(
  request: AdmissionRequest,
  source: 'direct' | 'dry-run',
  tool: string,
  ctx: PolicyContext,
): Decision {
  const behaviour = phaseBehaviour(ctx.phase);
  const kind = workloadKind(request);
  const name = objectName(request);
  const { operation } = request;
  if (behaviour.denyDirectJobsFrameworkWrites && isJobsFrameworkWorkload(request)) {
    const message = jobsFrameworkDeniedMessage(kind, operation, name);
    return {
      verdict: { allowed: false, warnings: [], denial: { code: 403, reason: 'Forbidden', message } },
      source,
      level: 'info',
    };
  }
  const verdict = { allowed: true, warnings: [directWriteWarning(kind, operation, name, behaviour)] } as const;
  if (source === 'dry-run') return { verdict, source, level: 'debug' };
  return {
    verdict,
    source,
    level: 'info',
    recording: {
      metric: 'directWrites',
      labels: { tool_name: tool, kind, operation },
      key: writeKey(request, name),
    },
  };
}

export function decideRecordDirectWrite(request: AdmissionRequest, ctx: PolicyContext): Decision {
  const c = classify(request, ctx);
  switch (c.source) {
    case 'break-glass':
      return breakGlassDecision(request, c.group, request.resource.resource);
    case 'direct':
    case 'dry-run':
      return directDecision(request, c.source, c.tool, ctx);
    default:
      return { verdict: { allowed: true, warnings: [] }, source: c.source, level: 'debug' };
  }
}
