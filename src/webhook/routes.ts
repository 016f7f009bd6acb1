import { getRoutes, probeRoutes } from '../http/routes.js';
import type { ProbeDeps, Route } from '../http/routes.js';
import type { AdmissionHandler } from './admission.js';
import { admissionWebhookFor, serveAdmission } from './http.js';

export interface WebhookRoutesDeps extends ProbeDeps {
  admission: AdmissionHandler;
}

/**
 * The webhook's one router, for HTTP/1.1 and h2 compat requests alike: the admission POSTs (`ADMISSION_PATH`), then
 * /healthz (the process answers), /readyz (certificate loaded, phase known, not draining) and /metrics, and 404 for
 * anything else. kube-apiserver's h2 admission POSTs mostly arrive on the stream path (`serveAdmissionStream`), which
 * answers with the same handler.
 */
export function webhookRoutes(deps: WebhookRoutesDeps): Route {
  const { admission } = deps;
  const probes = getRoutes(probeRoutes(deps));
  return (req, res) => {
    const webhook = req.method === 'POST' ? admissionWebhookFor(req.url) : undefined;
    if (webhook === undefined) probes(req, res);
    else serveAdmission(admission, webhook, req, res);
  };
}
