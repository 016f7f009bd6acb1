/**
 * The one-shot commands that run the sync once (`import`, `report`): the sync's first reconcile and settled writes
 * awaited, then the command's output. They connect and fail as every cluster command does (src/cli/cluster.ts); the
 * informers retry behind the command's back, so their waits race the session's `failure`.
 */
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { IMPORT_BACKFILL_IN_FLIGHT } from '../sync/backfill.js';
import { IMPORT_EVENT_DELAY_MS } from '../sync/loop.js';
import type { SyncLoop } from '../sync/loop.js';
import { failFast, runAsHint } from './cluster.js';
import type { Caller, Session } from './cluster.js';
import { syncParts, withPhase } from './compose.js';

export type OneShotCommand = 'import' | 'report';

/**
 * `import` writes job CRs, which only the storage writers and the break-glass groups may write (the
 * ValidatingAdmissionPolicy and the webhook deny everyone else with the message meant for tool maintainers). Says so
 * before anything is written, and what to run instead. Callers the API server did not confirm are let through: the
 * first denial then stops the import with `refusalError`.
 */
export function checkImportCaller(caller: Caller, config: Config): void {
  if (!caller.confirmed) return;
  if (config.identities.storageWriters.includes(caller.name)) return;
  if (caller.groups.some((g) => config.identities.breakGlassGroups.includes(g))) return;
  throw new AppError(
    'ERR_K8S_DENIED',
    `import writes job CRs, which only identities.storageWriters and the break-glass groups may write, and "${caller.name}" is neither; ${runAsHint('import', config)}`,
  );
}

/**
 * The sync run once for `import` and `report` on a connected session (`connect`: the caller established, a 401 or a
 * refused impersonation already ended it): no election, no backfill grace, the sync's first reconcile and settled
 * writes awaited, then `use`, then everything stopped. `import` refuses callers that may not write job CRs before
 * writing anything; then the first 401/403 of any request ends the command with one line naming the caller and the
 * request, as does the API server staying unreachable, or the first list not complete in `oneShot.listSeconds`.
 * `whileWriting` runs from the first reconcile (every backfill dispatched) until the writes settle, and returns
 * what stops it (import's progress line). `import` writes IMPORT_BACKFILL_IN_FLIGHT CRs at once.
 */
export async function withOneShotSync<T>(
  session: Session<SyncMetrics>,
  options: { readOnly: boolean },
  use: (sync: SyncLoop, logger: Logger) => T | Promise<T>,
  whileWriting?: (sync: SyncLoop, logger: Logger) => () => void,
): Promise<T> {
  const command = session.command as OneShotCommand;
  if (command === 'import' && !options.readOnly) checkImportCaller(session.caller, session.config);
  const config = { ...session.config, sync: { ...session.config.sync, backfillGraceSeconds: 0 } };
  const { phase, sync } = syncParts(
    { ...session, config },
    {
      elect: false,
      readOnly: options.readOnly,
      ...(command === 'import'
        ? { backfillInFlight: IMPORT_BACKFILL_IN_FLIGHT, eventDelayMs: IMPORT_EVENT_DELAY_MS, watchCrs: false }
        : {}),
    },
  );
  return failFast(session, async (failure) => {
    let listDeadline: NodeJS.Timeout | undefined;
    const listed = new Promise<never>((_, reject) => {
      listDeadline = setTimeout(
        () =>
          reject(
            new AppError(
              'ERR_K8S_API',
              `could not list every workload and job CR in ${config.oneShot.listSeconds} s (oneShot.listSeconds); run with -v for the log`,
            ),
          ),
        config.oneShot.listSeconds * 1000,
      );
    });
    listed.catch(() => undefined);
    return withPhase(phase, async () => {
      sync.start();
      try {
        await Promise.race([sync.firstReconcile, failure, listed]);
        // Everything is listed: the deadline was for that, not for the writes (20,000 CRs may take minutes).
        clearTimeout(listDeadline);
        const stopWatching = whileWriting?.(sync, session.logger);
        try {
          await Promise.race([sync.settled(), failure]);
        } finally {
          stopWatching?.();
        }
        return await use(sync, session.logger);
      } finally {
        clearTimeout(listDeadline);
        await sync.stop();
      }
    });
  });
}
