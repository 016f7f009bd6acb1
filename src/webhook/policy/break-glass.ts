import type { AdmissionRequest } from '../review.js';
import { objectName } from './evidence.js';
import { breakGlassWarning } from './messages.js';
import type { Decision } from './types.js';

/**
 * A break-glass group member's write, in either webhook: allowed with a warning, logged at warn, and counted by
 * resource (`resource` names it, e.g. `scheduled-jobs` or `cronjobs/status`) unless it is a dry run.
 */
export function breakGlassDecision(request: AdmissionRequest, group: string, resource: string): Decision {
  return {
    verdict: { allowed: true, warnings: [breakGlassWarning(request.kind.kind, objectName(request), group)] },
    source: 'break-glass',
    level: 'warn',
    ...(request.dryRun
      ? {}
      : { recording: { metric: 'breakGlass', labels: { resource, operation: request.operation } } }),
  };
}
