import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict } from '../k8s/errors.js';
import { collectionPath, SERVICES, type ApiResource } from '../k8s/paths.js';
import { toSafeYaml } from '../k8s/yaml.js';
import { isObject, type KObject } from '../runtime/object.js';
import { toolOfNamespace } from '../jobs/tenancy.js';
import { renderFromCr, type PreflightSettings } from './preflight.js';

/**
 * Restore: the workloads jobs-api would create for a job whose workloads are gone, rebuilt from its CR. Planning is
 * pure; applying only ever creates (POST): an object that exists by then is reported, never replaced or updated.
 */

/**
 * `toolUid` gives the uid jobs-api writes into the pods (see tool-uid.ts for where it is learnt). With
 * `requireUid`, a job whose uid is unknown is refused (`uidHint` says what to pass) instead of rendered without one.
 */
export type RestoreSettings = PreflightSettings & { requireUid?: boolean; uidHint?: string };

export type RestoreRefusal =
  'cr-does-not-decode' | 'render-failed' | 'not-a-job-cr' | 'workload-exists' | 'uid-unknown';

export type RestorePlan =
  | { ok: true; tool: string; job: string; namespace: string; objects: KObject[]; warnings: string[] }
  | { ok: false; tool: string; job: string; refusal: RestoreRefusal; message: string };

const RESOURCES: Readonly<Record<string, ApiResource>> = {
  CronJob: { group: 'batch', version: 'v1', plural: 'cronjobs' },
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments' },
  Job: { group: 'batch', version: 'v1', plural: 'jobs' },
  Service: SERVICES,
};

function metadataOf(obj: unknown): KObject {
  const md = isObject(obj) ? obj['metadata'] : undefined;
  return isObject(md) ? md : {};
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * What restoring one job would create. `existing` are the objects of the job still in the cluster (its CronJob, or
 * Deployment and Service, found by name); any of them makes the plan a refusal, so restore never touches a job
 * whose workload is (partly) there.
 */
export function restorePlan(cr: unknown, existing: readonly unknown[], settings: RestoreSettings): RestorePlan {
  const md = metadataOf(cr);
  const job = str(md['name']);
  const namespace = str(md['namespace']);
  const tool = toolOfNamespace(namespace, settings.runtime.toolNamespacePrefix) ?? namespace;
  const uid = settings.toolUid?.(tool);
  const rendered = renderFromCr(cr, settings, uid);
  if (!rendered.ok) return { ok: false, tool, job, refusal: rendered.code, message: rendered.message };
  const present = existing.filter((o) =>
    rendered.objects.some((r) => r['kind'] === (isObject(o) ? o['kind'] : undefined)),
  );
  if (present.length > 0) {
    const names = present.map((o) => `${str((o as KObject)['kind'])}/${str(metadataOf(o)['name'])}`).join(', ');
    return {
      ok: false,
      tool,
      job,
      refusal: 'workload-exists',
      message: `${names} still exists: restore only creates the workloads of a job that has none`,
    };
  }
  if (uid === undefined && settings.requireUid === true) {
    return {
      ok: false,
      tool,
      job,
      refusal: 'uid-unknown',
      message: `the uid of tool '${tool}' is unknown, and jobs-api runs its pods as that uid${settings.uidHint ? ` (${settings.uidHint})` : ''}: pass --uid N, the uid of the tool's account in passwd`,
    };
  }
  const warnings =
    uid === undefined
      ? [
          `the uid of tool '${tool}' is unknown: the pods get no runAsUser, runAsGroup or fsGroup (jobs-api sets them from passwd)`,
        ]
      : [];
  return { ok: true, tool, job, namespace, objects: rendered.objects, warnings };
}

/** The dry-run output: the objects as a YAML stream or a JSON list. */
export function formatRestorePlan(plans: readonly RestorePlan[], format: 'yaml' | 'json'): string {
  const objects = plans.flatMap((p) => (p.ok ? p.objects : []));
  if (format === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  return objects.map((o) => `---\n${toSafeYaml(o)}`).join('');
}

export interface RestoreOutcome {
  object: string;
  outcome: 'created' | 'exists' | 'failed';
  message?: string;
}

/**
 * Creates the planned objects in order with POST only. A 409 means the object appeared meanwhile: reported as
 * `exists` and left alone (never retried as an update). Any other error is reported as `failed` with the API's reason.
 */
export async function applyRestore(
  api: Pick<KubeApi, 'request'>,
  plan: Extract<RestorePlan, { ok: true }>,
): Promise<RestoreOutcome[]> {
  const outcomes: RestoreOutcome[] = [];
  for (const obj of plan.objects) {
    const kind = str(obj['kind']);
    const object = `${kind}/${str(metadataOf(obj)['name'])}`;
    const resource = RESOURCES[kind];
    if (resource === undefined) {
      outcomes.push({ object, outcome: 'failed', message: `kind '${kind}' is not restored` });
      continue;
    }
    try {
      await api.request('POST', collectionPath(resource, plan.namespace), { body: obj });
      outcomes.push({ object, outcome: 'created' });
    } catch (err) {
      if (isConflict(err)) outcomes.push({ object, outcome: 'exists', message: 'already exists: left unchanged' });
      else outcomes.push({ object, outcome: 'failed', message: describeApiError(err).message });
    }
  }
  return outcomes;
}
