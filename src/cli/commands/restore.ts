import { createSharedMetrics } from '../../metrics/registry.js';
import { toolUidFromObjects, workloadKindOfCr } from '../../preflight/preflight.js';
import { readTool } from '../../preflight/read.js';
import {
  applyRestore,
  formatRestorePlan,
  restorePlan,
  type RestoreOutcome,
  type RestorePlan,
  type RestoreSettings,
} from '../../preflight/restore.js';
import { chooseToolUid, readPodPolicyUid, type UidCandidate } from '../../preflight/tool-uid.js';
import type { KubeApi } from '../../k8s/api.js';
import { isObject } from '../../runtime/object.js';
import { storageKindForKind } from '../../storage/kinds.js';
import { loadRuntimeSettings as runtimeSettings } from '../../runtime/settings.js';
import { connect, failFast } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';
import { checkToolNames } from './preflight.js';

function field(obj: unknown, ...path: string[]): string {
  let node: unknown = obj;
  for (const p of path) node = isObject(node) ? node[p] : undefined;
  return typeof node === 'string' ? node : '';
}

/**
 * The jobs to restore: the named ones (each must have a CR), or else every job whose CR has no workload. A job's
 * existing objects are those of its name among the CronJobs, Deployments and Services, which make its plan a refusal.
 */
export function selectRestores(
  crs: readonly unknown[],
  objects: readonly unknown[],
  jobs: readonly string[],
  settings: RestoreSettings,
): { plans: RestorePlan[]; missing: string[] } {
  const existingOf = (name: string) => objects.filter((o) => field(o, 'metadata', 'name') === name);
  const lost = (cr: unknown) => {
    const workloadKind = workloadKindOfCr(field(cr, 'kind'));
    return !existingOf(field(cr, 'metadata', 'name')).some((o) => field(o, 'kind') === workloadKind);
  };
  const jobCrs = crs.filter((cr) => storageKindForKind(field(cr, 'kind')) !== undefined);
  const chosen =
    jobs.length > 0 ? jobCrs.filter((cr) => jobs.includes(field(cr, 'metadata', 'name'))) : jobCrs.filter(lost);
  const missing = jobs.filter((j) => !jobCrs.some((cr) => field(cr, 'metadata', 'name') === j));
  return {
    plans: chosen.map((cr) => restorePlan(cr, existingOf(field(cr, 'metadata', 'name')), settings)),
    missing,
  };
}

/** Refusals and warnings on stderr; true when any job was refused. */
function reportRefusals(tool: string, plans: readonly RestorePlan[], missing: readonly string[], io: CliIo): boolean {
  for (const job of missing) io.stderr(`refused ${tool}/${job}: no CR of that name in storage\n`);
  for (const plan of plans) {
    if (!plan.ok) {
      const { tool: t, job, code, message } = plan.problem;
      io.stderr(`refused ${t}/${job} (${code}): ${message}\n`);
    } else for (const w of plan.value.warnings) io.stderr(`warning: ${plan.value.tool}/${plan.value.job}: ${w}\n`);
  }
  if (plans.length === 0 && missing.length === 0) io.stderr(`tool '${tool}' has no job to restore\n`);
  return missing.length > 0 || plans.some((p) => !p.ok);
}

/**
 * The tool's uid by precedence: `--uid`, then the tool's Kyverno pod policy (it survives the workloads), then the
 * tool's remaining workloads. Says on stderr which source gave it and whether the sources disagree; `note` lists
 * what was looked at when none did.
 */
async function learnToolUid(
  api: Pick<KubeApi, 'request'>,
  o: { tool: string; namespace: string; flag: number | undefined; objects: readonly unknown[] },
  io: CliIo,
): Promise<{ uid?: number; source?: string; note: string }> {
  const { tool, flag } = o;
  const policy = await readPodPolicyUid(api, o.namespace);
  const fromWorkloads = toolUidFromObjects(o.objects);
  const candidates: UidCandidate[] = [
    ...(flag === undefined ? [] : [{ uid: flag, source: '--uid' }]),
    ...(policy.candidate === undefined ? [] : [policy.candidate]),
    ...(fromWorkloads === undefined ? [] : [{ uid: fromWorkloads, source: "the tool's remaining workloads" }]),
  ];
  const chosen = chooseToolUid(candidates);
  if (chosen.disagreement !== undefined)
    io.stderr(`warning: tool '${tool}': uid sources disagree: ${chosen.disagreement}\n`);
  const note = `${policy.note}, no remaining workload records it`;
  if (chosen.uid === undefined) io.stderr(`uid of tool '${tool}': unknown (no --uid, ${note})\n`);
  else io.stderr(`uid of tool '${tool}': ${chosen.uid} from ${chosen.source ?? ''}\n`);
  return { ...(chosen.uid === undefined ? {} : { uid: chosen.uid, source: chosen.source }), note };
}

function outcomeLine(namespace: string, o: RestoreOutcome): string {
  return `${o.outcome} ${o.object} in ${namespace}${o.message ? `: ${o.message}` : ''}\n`;
}

/**
 * `jobs-storage restore`: rebuild the workloads of jobs that exist only in storage, from their CRs, as jobs-api would
 * render them. A dry run by default (the objects on stdout); `--apply` creates them as the admin running the
 * command, create only. Exit 0 when every chosen job was planned (and created), 1 when any was refused or not
 * created or the tool could not be read, 2 on usage errors.
 */
export async function runRestore(
  opts: ClusterFlags & { tool: string; job: string[]; apply: boolean; output: 'yaml' | 'json'; uid?: number },
  io: CliIo,
): Promise<number> {
  checkToolNames([opts.tool]);
  const session = await connect(opts, 'restore', io, createSharedMetrics);
  return failFast(session, () => restore(session.api, runtimeSettings(session.config), opts, io));
}

async function restore(
  api: KubeApi,
  runtime: RestoreSettings['runtime'],
  opts: { tool: string; job: string[]; apply: boolean; output: 'yaml' | 'json'; uid?: number },
  io: CliIo,
): Promise<number> {
  const read = await readTool(api, opts.tool, { namespacePrefix: runtime.toolNamespacePrefix });
  const namespace = `${runtime.toolNamespacePrefix}${opts.tool}`;
  const { uid, source, note } = await learnToolUid(
    api,
    { tool: opts.tool, namespace, flag: opts.uid, objects: read.objects },
    io,
  );
  const settings: RestoreSettings = {
    runtime,
    ...(uid === undefined ? {} : { toolUid: () => uid }),
    requireUid: opts.apply,
    uidHint: note,
  };
  const { plans, missing } = selectRestores(read.crs, read.objects, opts.job, settings);
  let failed = reportRefusals(opts.tool, plans, missing, io);
  const ready = plans.filter((p): p is Extract<RestorePlan, { ok: true }> => p.ok);
  if (!opts.apply) {
    if (ready.length > 0) {
      const head = opts.output === 'yaml' ? `# uid ${uid === undefined ? 'unknown' : `${uid} from ${source}`}\n` : '';
      io.stdout(head + formatRestorePlan(ready, opts.output));
    }
    return failed ? EXIT.inputErrors : EXIT.ok;
  }
  for (const plan of ready) {
    for (const o of await applyRestore(api, plan)) {
      io.stdout(outcomeLine(plan.value.namespace, o));
      if (o.outcome !== 'created') failed = true;
    }
  }
  return failed ? EXIT.inputErrors : EXIT.ok;
}
