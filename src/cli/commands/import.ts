import { withOneShotSync } from '../compose.js';
import { impersonation } from '../one-shot.js';
import { EXIT, table } from '../io.js';
import type { CliIo } from '../io.js';

/**
 * `jobs-storage import`: the initial import. Creates the CR of every jobs-framework job found in Kubernetes
 * without one, as the sync would in the current phase, then stops. Never modifies or deletes anything.
 */
export async function runImport(
  opts: { config?: string; dryRun: boolean; as?: string; asGroup?: string[] },
  io: CliIo,
): Promise<number> {
  const as = impersonation(opts);
  const options = { configFile: opts.config, command: 'import' as const, readOnly: opts.dryRun, ...(as ? { as } : {}) };
  return withOneShotSync(options, async (sync) => {
    const rows = [['TOOL', 'JOB', 'TYPE', opts.dryRun ? 'WOULD' : 'RESULT']];
    if (opts.dryRun) {
      const plans = await sync.allPlans();
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
    const results = sync.backfillResults();
    for (const r of results) rows.push([r.tool, r.name, r.type, `${r.outcome}${r.reason ? ` (${r.reason})` : ''}`]);
    io.stdout(table(rows));
    const counts = sync.backfillOutcomes();
    const total = counts.created + counts.existed + counts.skipped + counts.failed;
    if (total > results.length) io.stdout(`(the table shows the last ${results.length} of ${total} outcomes)\n`);
    io.stdout(
      `created ${counts.created}, already present ${counts.existed}, skipped ${counts.skipped}, failed ${counts.failed}\n`,
    );
    return counts.failed > 0 ? EXIT.inputErrors : EXIT.ok;
  });
}
