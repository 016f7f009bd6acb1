import { createSyncMetrics } from '../../metrics/registry.js';
import type { ToolPlan } from '../../sync/reconcile.js';
import { connect } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { EXIT, table, writeDocument } from '../io.js';
import type { CliIo } from '../io.js';
import { withOneShotSync } from '../one-shot.js';

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
  opts: ClusterFlags & { tool: string[]; output: 'table' | 'json' | 'yaml' },
  io: CliIo,
): Promise<number> {
  const session = await connect(opts, 'report', io, createSyncMetrics);
  return withOneShotSync(session, { readOnly: true }, async (sync) => {
    const plans = selectTools(await sync.allPlans(), opts.tool);
    if (opts.output === 'table') io.stdout(table(reportRows(plans)));
    else
      writeDocument(
        io,
        plans.map(({ backfill: _b, ...p }) => p),
        opts.output,
      );
    return EXIT.ok;
  });
}
