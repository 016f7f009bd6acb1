import type { AdmissionRequest } from '../review.js';
import { breakGlassGroup, objectName } from './evidence.js';
import { breakGlassDecision } from './break-glass.js';
import { storageDeniedMessage } from './messages.js';
import type { Decision, PolicyContext } from './types.js';
import { STORAGE_GROUP } from '../../storage/kinds.js';

/** jobs-api's storage group; every plural in it (today's kinds, `one-off-jobs`, future ones) and every subresource. */

const ALLOW_SILENTLY = { allowed: true, warnings: [] } as const;

function resourceLabel(request: AdmissionRequest): string {
  return request.subResource ? `${request.resource.resource}/${request.subResource}` : request.resource.resource;
}

/**
 * Only the configured writers (jobs-api, the sync) may create, change or delete job CRs. Break-glass group members
 * may too, with a warning, a log line and a count. Everyone else is denied with the command to use instead; a dry run
 * gets the same answer but is not counted.
 */
export function decideProtectStorage(request: AdmissionRequest, ctx: PolicyContext): Decision {
  const { operation } = request;
  if (request.resource.group !== STORAGE_GROUP || operation === 'CONNECT') {
    return { verdict: ALLOW_SILENTLY, source: 'out-of-scope', level: 'debug' };
  }
  if (ctx.identities.storageWriters.includes(request.userInfo.username)) {
    return { verdict: ALLOW_SILENTLY, source: 'storage-writer', level: 'debug' };
  }
  const kind = request.kind.kind;
  const name = objectName(request);
  const group = breakGlassGroup(request, ctx.identities.breakGlassGroups);
  if (group !== undefined) return breakGlassDecision(request, group, resourceLabel(request));
  return {
    verdict: {
      allowed: false,
      warnings: [],
      denial: { code: 403, reason: 'Forbidden', message: storageDeniedMessage(kind, operation, name) },
    },
    source: 'not-a-writer',
    level: 'info',
    ...(request.dryRun ? {} : { recording: { metric: 'storageWritesDenied', labels: { operation } } }),
  };
}
