import { createSyncMetrics } from '../../metrics/registry.js';
import type { SyncLoop } from '../../sync/loop.js';
import { connect } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { EXIT, formatProgress, showProgress, table, writeDocument } from '../io.js';
import type { CliIo, DocumentFormat } from '../io.js';
import { withOneShotSync } from '../one-shot.js';

/** A job import would create (`--dry-run`), or what became of the one it tried to. */
interface ImportRow {
  tool: string;
  job: string;
  type: string;
  /** Dry run: `create`, or the action that is not a create (`skip`, …). Else the outcome. */
  result: string;
  reason?: string;
}

/** What `import -o json|yaml` prints: the rows of the table and the summary's figures. */
export interface ImportSummary {
  dryRun: boolean;
  /** Dry run: how many job CRs would be created. */
  wouldCreate?: number;
  counts?: { created: number; existed: number; skipped: number; failed: number };
  /** Outcomes in total; `jobs` holds the last of them when there were more. */
  outcomes?: number;
  seconds?: number;
  /** Seconds spent listing and planning before the first write. */
  listingSeconds?: number;
  jobs: ImportRow[];
}

/**
 * `jobs-storage import`: the initial import. Creates the CR of every jobs-framework job found in Kubernetes
 * without one, as the sync would in the current phase, then stops. Never modifies or deletes anything. While it
 * writes, a progress line on stderr (rewritten in place on a terminal, a plain line every few seconds otherwise); then
 * the table of outcomes and a summary on stdout.
 */
export async function runImport(
  opts: ClusterFlags & { dryRun: boolean; output?: DocumentFormat },
  io: CliIo,
): Promise<number> {
  const session = await connect(opts, 'import', io, createSyncMetrics);
  const started = Date.now();
  let writing = started;
  const progress = (sync: SyncLoop): (() => void) => {
    writing = Date.now();
    return showProgress(io, {
      read: () => {
        const done = finished(sync.backfillOutcomes());
        return { done, total: done + sync.backfillPending() };
      },
      format: (p) => formatProgress('import', 'jobs', p),
      report: (p) => io.stderr(`${formatProgress('import', 'jobs', p)}\n`),
    }).stop;
  };
  const row = (tool: string, job: string, type: string, result: string, reason?: string): ImportRow => ({
    tool,
    job,
    type,
    result,
    ...(reason ? { reason } : {}),
  });
  return withOneShotSync(
    session,
    { readOnly: opts.dryRun },
    async (sync) => {
      if (opts.dryRun) {
        const jobs = (await sync.allPlans()).flatMap((p) =>
          p.jobs
            .filter((x) => !x.inStorage && x.action !== 'skip-deleting')
            .map((j) => row(p.tool, j.name, j.type, j.action === 'backfill' ? 'create' : j.action, j.reason)),
        );
        const wouldCreate = jobs.filter((j) => j.result === 'create').length;
        if (opts.output !== undefined) writeDocument(io, { dryRun: true, wouldCreate, jobs }, opts.output);
        else {
          io.stdout(table([['TOOL', 'JOB', 'TYPE', 'WOULD'], ...jobs.map(cells)]));
          io.stdout(`would create ${wouldCreate} job definition(s)\n`);
        }
        return EXIT.ok;
      }
      const jobs = sync.backfillResults().map((r) => row(r.tool, r.name, r.type, r.outcome, r.reason));
      const counts = sync.backfillOutcomes();
      const total = finished(counts);
      const seconds = (Date.now() - started) / 1000;
      const listingSeconds = (writing - started) / 1000;
      const code = counts.failed > 0 ? EXIT.inputErrors : EXIT.ok;
      if (opts.output !== undefined) {
        const { created, existed, skipped, failed } = counts;
        const summary: ImportSummary = {
          dryRun: false,
          counts: { created, existed, skipped, failed },
          outcomes: total,
          seconds: round1(seconds),
          listingSeconds: round1(listingSeconds),
          jobs,
        };
        writeDocument(io, summary, opts.output);
        return code;
      }
      io.stdout(table([['TOOL', 'JOB', 'TYPE', 'RESULT'], ...jobs.map(cells)]));
      if (total > jobs.length) io.stdout(`(the table shows the last ${jobs.length} of ${total} outcomes)\n`);
      const rate = seconds > 0 ? Math.round(counts.created / seconds) : 0;
      io.stdout(
        `created ${counts.created}, already present ${counts.existed}, skipped ${counts.skipped}, failed ${counts.failed}` +
          ` in ${seconds.toFixed(1)} s (${rate} CRs/s; listing and planning ${listingSeconds.toFixed(1)} s)\n`,
      );
      return code;
    },
    opts.dryRun ? undefined : progress,
  );
}

/** A row of the table: the result with its reason in parentheses. */
function cells(r: ImportRow): string[] {
  return [r.tool, r.job, r.type, `${r.result}${r.reason ? ` (${r.reason})` : ''}`];
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Backfills that ended, whatever their outcome. */
function finished(counts: Readonly<Record<'created' | 'existed' | 'skipped' | 'failed', number>>): number {
  return counts.created + counts.existed + counts.skipped + counts.failed;
}
