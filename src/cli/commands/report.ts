import type { ToolPlan } from '../../sync/reconcile.js';
import { impersonation, withOneShotSync } from '../one-shot.js';
import { EXIT, table } from '../io.js';
import type { CliIo } from '../io.js';

function selectTools(plans: ToolPlan[], tools: readonly string[]): ToolPlan[] {
  return tools.length === 0 ? plans : plans.filter((p) => tools.includes(p.tool));
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
  opts: { config?: string; tool: string[]; output: 'table' | 'json'; as?: string; asGroup?: string[] },
  io: CliIo,
): Promise<number> {
  const as = impersonation(opts);
  const options = { configFile: opts.config, command: 'report' as const, readOnly: true, ...(as ? { as } : {}) };
  return withOneShotSync(options, async (sync) => {
    const plans = selectTools(await sync.allPlans(), opts.tool);
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
