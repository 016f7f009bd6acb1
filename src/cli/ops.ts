import type { CliIo } from '../cli.js';
import { EXIT } from '../cli.js';
import { KubeApi } from '../k8s/api.js';
import { loadCredentials } from '../k8s/credentials.js';
import type { Logger } from '../log/logger.js';
import type { ToolPlan } from '../sync/reconcile.js';
import { getPhase, setPhase } from './phase.js';
import { loadCommon, syncParts } from './serve.js';

async function withOneShotSync<T>(
  configFile: string | undefined,
  o: { readOnly: boolean },
  use: (plans: ToolPlan[], logger: Logger) => T,
): Promise<T> {
  const c = loadCommon(configFile, o.readOnly ? 'report' : 'import', true);
  const config = { ...c.config, sync: { ...c.config.sync, backfillGraceSeconds: 0 } };
  const { phaseSource, sidecar } = await syncParts({ ...c, config }, { elect: false, readOnly: o.readOnly });
  phaseSource?.start();
  sidecar.start();
  try {
    await sidecar.firstReconcile;
    await sidecar.settled();
    return use(sidecar.allPlans(), c.logger);
  } finally {
    await sidecar.stop();
    await phaseSource?.stop();
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
  return withOneShotSync(opts.config, { readOnly: true }, (all) => {
    const plans = selectTools(all, opts.tool);
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
  return withOneShotSync(opts.config, { readOnly: opts.dryRun }, (plans) => {
    const rows = [['TOOL', 'JOB', 'TYPE', opts.dryRun ? 'WOULD' : 'RESULT']];
    let created = 0;
    for (const p of plans) {
      for (const j of p.jobs.filter(
        (x) => x.state === 'only-in-runtime' || (x.state === 'unreadable' && !x.inStorage),
      )) {
        const outcome =
          j.action === 'backfill'
            ? opts.dryRun
              ? 'create'
              : 'created'
            : `${j.action}${j.reason ? ` (${j.reason})` : ''}`;
        if (j.action === 'backfill') created += 1;
        rows.push([p.tool, j.name, j.type, outcome]);
      }
    }
    io.stdout(table(rows));
    io.stdout(`${opts.dryRun ? 'would create' : 'created'} ${created} job definition(s) in ${plans.length} tool(s)\n`);
    return EXIT.ok;
  });
}

export async function runPhaseGet(opts: { config?: string }, io: CliIo): Promise<number> {
  const c = loadCommon(opts.config, 'phase', true);
  const api = new KubeApi(await loadCredentials(c.config));
  const state = await getPhase(api, c.config);
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
