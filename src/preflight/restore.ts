import { failure, ok, type CodedProblem, type Result } from '../errors.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict } from '../k8s/errors.js';
import { collectionPath, SERVICES, type ApiResource } from '../k8s/paths.js';
import { toSafeYaml } from '../k8s/yaml.js';
import { workloadKindOf } from '../runtime/kinds.js';
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

/** What restoring one job creates, in order, in its namespace. */
export interface PlannedRestore {
  tool: string;
  job: string;
  namespace: string;
  objects: KObject[];
  warnings: string[];
}

/** Why a job is not restored (`code`), and which job. */
export interface RestoreProblem extends CodedProblem<RestoreRefusal> {
  tool: string;
  job: string;
}

export type RestorePlan = Result<PlannedRestore, RestoreProblem>;

/** The collection a rendered object is created in: its workload kind's, or the Services'. */
function resourceOf(kind: string): ApiResource | undefined {
  return kind === 'Service' ? SERVICES : workloadKindOf(kind);
}

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
  const refuse = (code: RestoreRefusal, message: string) => failure({ code, path: '', message, tool, job });
  const rendered = renderFromCr(cr, settings, uid);
  if (!rendered.ok) return refuse(rendered.problem.code, rendered.problem.message);
  const objects = rendered.value;
  const present = existing.filter((o) => objects.some((r) => r['kind'] === (isObject(o) ? o['kind'] : undefined)));
  if (present.length > 0) {
    const names = present.map((o) => `${str((o as KObject)['kind'])}/${str(metadataOf(o)['name'])}`).join(', ');
    return refuse(
      'workload-exists',
      `${names} still exists: restore only creates the workloads of a job that has none`,
    );
  }
  if (uid === undefined && settings.requireUid === true) {
    return refuse(
      'uid-unknown',
      `the uid of tool '${tool}' is unknown, and jobs-api runs its pods as that uid${settings.uidHint ? ` (${settings.uidHint})` : ''}: pass --uid N, the uid of the tool's account in passwd`,
    );
  }
  const warnings =
    uid === undefined
      ? [
          `the uid of tool '${tool}' is unknown: the pods get no runAsUser, runAsGroup or fsGroup (jobs-api sets them from passwd)`,
        ]
      : [];
  return ok({ tool, job, namespace, objects, warnings });
}

/** The dry-run output: the objects as a YAML stream or a JSON list. */
export function formatRestorePlan(plans: readonly RestorePlan[], format: 'yaml' | 'json'): string {
  const objects = plans.flatMap((p) => (p.ok ? p.value.objects : []));
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
  for (const obj of plan.value.objects) {
    const kind = str(obj['kind']);
    const object = `${kind}/${str(metadataOf(obj)['name'])}`;
    const resource = resourceOf(kind);
    if (resource === undefined) {
      outcomes.push({ object, outcome: 'failed', message: `kind '${kind}' is not restored` });
      continue;
    }
    try {
      await api.request('POST', collectionPath(resource, plan.value.namespace), { body: obj });
      outcomes.push({ object, outcome: 'created' });
    } catch (err) {
      if (isConflict(err)) outcomes.push({ object, outcome: 'exists', message: 'already exists: left unchanged' });
      else outcomes.push({ object, outcome: 'failed', message: describeApiError(err).message });
    }
  }
  return outcomes;
}
