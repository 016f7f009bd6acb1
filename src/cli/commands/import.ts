import { impersonation, withOneShotSync } from '../one-shot.js';
import { EXIT, formatProgress, showProgress, table } from '../io.js';
import type { CliIo, ProgressState } from '../io.js';
import type { Logger } from '../../log/logger.js';
import type { SyncLoop } from '../../sync/loop.js';

/**
 * `jobs-storage import`: the initial import. Creates the CR of every jobs-framework job found in Kubernetes
 * without one, as the sync would in the current phase, then stops. Never modifies or deletes anything. While it
 * writes, a progress line on stderr (rewritten in place on a terminal, a log line every few seconds otherwise); then
 * the table of outcomes and a summary on stdout.
 */
export async function runImport(
  opts: { config?: string; dryRun: boolean; as?: string; asGroup?: string[] },
  io: CliIo,
): Promise<number> {
  const as = impersonation(opts);
  const options = { configFile: opts.config, command: 'import' as const, readOnly: opts.dryRun, ...(as ? { as } : {}) };
  const started = Date.now();
  let writing = started;
  const progress = (sync: SyncLoop, logger: Logger): (() => void) => {
    writing = Date.now();
    return showProgress(io, {
      read: () => {
        const done = finished(sync.backfillOutcomes());
        return { done, total: done + sync.backfillPending() };
      },
      format: (p) => formatProgress('import', 'jobs', p),
      report: (p) => logger.info(progressFields(p), 'import progress'),
    }).stop;
  };
  return withOneShotSync(
    options,
    async (sync) => {
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
      const total = finished(counts);
      if (total > results.length) io.stdout(`(the table shows the last ${results.length} of ${total} outcomes)\n`);
      const seconds = (Date.now() - started) / 1000;
      const rate = seconds > 0 ? Math.round(counts.created / seconds) : 0;
      io.stdout(
        `created ${counts.created}, already present ${counts.existed}, skipped ${counts.skipped}, failed ${counts.failed}` +
          ` in ${seconds.toFixed(1)} s (${rate} CRs/s; listing and planning ${((writing - started) / 1000).toFixed(1)} s)\n`,
      );
      return counts.failed > 0 ? EXIT.inputErrors : EXIT.ok;
    },
    opts.dryRun ? undefined : progress,
  );
}

/** Backfills that ended, whatever their outcome. */
function finished(counts: Readonly<Record<'created' | 'existed' | 'skipped' | 'failed', number>>): number {
  return counts.created + counts.existed + counts.skipped + counts.failed;
}

/** The progress log line's fields (off a terminal). */
function progressFields(p: ProgressState): Record<string, number> {
  const rate = p.seconds > 0 ? p.done / p.seconds : 0;
  return {
    done: p.done,
    total: p.total,
    seconds: Math.round(p.seconds),
    jobsPerSecond: Math.round(rate),
    ...(rate > 0 ? { etaSeconds: Math.round((p.total - p.done) / rate) } : {}),
  };
}
