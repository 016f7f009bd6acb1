import type { CliIo } from '../cli.js';
import { EXIT } from '../cli.js';
import { KubeApi } from '../k8s/api.js';
import { loadCredentials } from '../k8s/credentials.js';
import type { Logger } from '../log/logger.js';
import type { ToolPlan } from '../sync/reconcile.js';
import type { SyncLoop as SyncSidecar } from '../sync/loop.js';
import { AppError } from '../errors.js';
import { getPhase, setPhase } from './phase.js';
import { loadCommon, syncParts } from './serve.js';

/** How long a one-shot command waits for the first complete list of everything before giving up. */
const ONE_SHOT_TIMEOUT_MS = 300_000;

async function withOneShotSync<T>(
  configFile: string | undefined,
  o: { readOnly: boolean },
  use: (sidecar: SyncSidecar, logger: Logger) => T | Promise<T>,
): Promise<T> {
  const c = loadCommon(configFile, o.readOnly ? 'report' : 'import', true);
  const config = { ...c.config, sync: { ...c.config.sync, backfillGraceSeconds: 0 } };
  const { phaseSource, sidecar } = await syncParts({ ...c, config }, { elect: false, readOnly: o.readOnly });
  phaseSource.start();
  sidecar.start();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError('ERR_K8S_API', 'could not list every workload and job CR in time; see the log')),
        ONE_SHOT_TIMEOUT_MS,
      );
    });
    await Promise.race([sidecar.firstReconcile, timedOut]);
    await sidecar.settled();
    return await use(sidecar, c.logger);
  } finally {
    clearTimeout(timer);
    await sidecar.stop();
    await phaseSource.stop();
  }
}

function selectTools(plans: ToolPlan[], tools: readonly string[]): ToolPlan[] {
  return tools.length === 0 ? plans : plans.filter((p) => tools.includes(p.tool));
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function reportRows(plans: ToolPlan[]): string[][] {
  const rows = [['TOOL', 'JOB', 'TYPE', 'STATE', 'ACTION', 'LISTED', 'DETAILS']];
  for (const p of plans) {
    for (const j of p.jobs) {
      const details =
        j.diff?.map((d) => `${d.field}: ${JSON.stringify(d.storage)} → ${JSON.stringify(d.runtime)}`).join('; ') ??
        j.reason ??
        '';
      rows.push([p.tool, j.name, j.type, j.state, j.action, j.listedByApi ? 'yes' : 'no', details]);
    }
    if (p.counts.foreign > 0)
      rows.push([
        p.tool,
        '-',
        '-',
        `${p.counts.foreign} foreign`,
        '-',
        'no',
        'CronJobs/Deployments without jobs-framework labels',
      ]);
  }
  return rows;
}

/** `jobs-storage report`: what the sync sees, per tool and job, without writing anything. */
export async function runReport(
  opts: { config?: string; tool: string[]; output: 'table' | 'json' },
  io: CliIo,
): Promise<number> {
  return withOneShotSync(opts.config, { readOnly: true }, async (sidecar) => {
    const plans = selectTools(await sidecar.allPlans(), opts.tool);
    if (opts.output === 'json')
      io.stdout(
        `${JSON.stringify(
          plans.map(({ backfill: _b, ...p }) => p),
          null,
          2,
        )}\n`,
      );
    else io.stdout(table(reportRows(plans)));
    return EXIT.ok;
  });
}

/**
 * `jobs-storage import`: the initial import. Creates the CR of every jobs-framework job found in Kubernetes
 * without one, as the sync would in the current phase, then stops. Never modifies or deletes anything.
 */
export async function runImport(opts: { config?: string; dryRun: boolean }, io: CliIo): Promise<number> {
  return withOneShotSync(opts.config, { readOnly: opts.dryRun }, async (sidecar) => {
    const rows = [['TOOL', 'JOB', 'TYPE', opts.dryRun ? 'WOULD' : 'RESULT']];
    if (opts.dryRun) {
      const plans = await sidecar.allPlans();
      for (const p of plans) {
        for (const j of p.jobs.filter((x) => !x.inStorage && x.action !== 'skip-deleting')) {
          rows.push([
            p.tool,
            j.name,
            j.type,
            j.action === 'backfill' ? 'create' : `${j.action}${j.reason ? ` (${j.reason})` : ''}`,
          ]);
        }
      }
      io.stdout(table(rows));
      io.stdout(`would create ${rows.filter((r) => r[3] === 'create').length} job definition(s)\n`);
      return EXIT.ok;
    }
    const results = sidecar.backfillResults();
    for (const r of results) rows.push([r.tool, r.name, r.type, `${r.outcome}${r.reason ? ` (${r.reason})` : ''}`]);
    io.stdout(table(rows));
    const count = (o: string) => results.filter((r) => r.outcome === o).length;
    io.stdout(
      `created ${count('created')}, already present ${count('existed')}, skipped ${count('skipped')}, failed ${count('failed')}\n`,
    );
    return count('failed') > 0 ? EXIT.inputErrors : EXIT.ok;
  });
}

export async function runPhaseGet(opts: { config?: string }, io: CliIo): Promise<number> {
  const c = loadCommon(opts.config, 'phase', true);
  const api = new KubeApi(await loadCredentials(c.config));
  const state = await getPhase(api, c.config);
  if (state.invalid !== undefined) {
    io.stderr(
      `jobs-storage: the phase ConfigMap holds '${state.invalid}', which is not a phase; webhook and sync keep their last known phase\n`,
    );
    return EXIT.inputErrors;
  }
  io.stdout(`${state.phase}${state.stored ? '' : ' (not set; the configured initial phase applies)'}\n`);
  for (const h of state.history.slice(-5))
    io.stdout(`  ${h.at} ${h.previous ?? '-'} → ${h.phase} by ${h.by}${h.reason ? `: ${h.reason}` : ''}\n`);
  return EXIT.ok;
}

export async function runPhaseSet(
  phase: string,
  opts: { config?: string; reason?: string },
  io: CliIo,
): Promise<number> {
  const c = loadCommon(opts.config, 'phase', true);
  const api = new KubeApi(await loadCredentials(c.config));
  const change = await setPhase(api, c.config, phase, { ...(opts.reason ? { reason: opts.reason } : {}) });
  io.stdout(`phase: ${change.previous ?? '(unset)'} → ${change.phase}\n`);
  return EXIT.ok;
}
