/**
 * The one-shot commands that run the sync once (`import`, `report`, `withOneShotSync`), and how they fail: at once on
 * a 401/403, naming who was refused what and what to do; after `oneShot.unreachableSeconds` when the API server
 * cannot be reached, with one line. A daemon retries instead (the informers' backoff); a person at a terminal wants
 * the reason.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/schema.js';
import { AppError, UsageError } from '../errors.js';
import type { Impersonation } from '../k8s/credentials.js';
import { statusOf } from '../k8s/errors.js';
import { FailFastApi, requestText } from '../k8s/fail-fast.js';
import type { Refusal } from '../k8s/fail-fast.js';
import { whoAmI } from '../k8s/identity.js';
import type { UserInfo } from '../k8s/identity.js';
import type { Logger } from '../log/logger.js';
import { createSyncMetrics } from '../metrics/registry.js';
import { IMPORT_BACKFILL_IN_FLIGHT } from '../sync/backfill.js';
import { IMPORT_EVENT_DELAY_MS } from '../sync/loop.js';
import type { SyncLoop } from '../sync/loop.js';
import { common, syncParts, withPhase } from './compose.js';

export type OneShotCommand = 'import' | 'report';

/** Who the command runs as: from the API server when it says, else the credentials it was given. */
export interface Caller {
  /** The API server's username, or a description of the credentials when the server did not say. */
  name: string;
  groups: string[];
  /** Whether the API server confirmed `name` (SelfSubjectReview). */
  confirmed: boolean;
}

/** `--as USER` and `--as-group GROUP…` as an impersonation; groups alone are refused, as kubectl does. */
export function impersonation(opts: { as?: string; asGroup?: string[] }): Impersonation | undefined {
  const groups = opts.asGroup ?? [];
  if (opts.as === undefined || opts.as === '') {
    if (groups.length > 0) throw new UsageError('--as-group needs --as (the user to impersonate)');
    return undefined;
  }
  return { user: opts.as, ...(groups.length > 0 ? { groups } : {}) };
}

/** The sync's ServiceAccount username: the storage writer in the product's own namespace. */
export function syncServiceAccount(config: Config): string | undefined {
  const prefix = `system:serviceaccount:${config.phase.namespace}:`;
  return config.identities.storageWriters.find((w) => w.startsWith(prefix));
}

/** What to run instead, for the messages. */
function runAsHint(command: OneShotCommand, config: Config): string {
  const sa = syncServiceAccount(config);
  return sa
    ? `run it as the sync's ServiceAccount: 'jobs-storage ${command} --as ${sa}' (needs impersonation, which cluster admins have; README "Who runs import and report")`
    : `run it as an identity in identities.storageWriters (README "Who runs import and report")`;
}

/** The credentials in use, in words, for when the API server does not tell who they are. */
export function credentialsText(config: Config, as?: Impersonation): string {
  const impersonating = as ? `, impersonating "${as.user}"` : '';
  if (config.kubeconfig) {
    try {
      const doc = parseYaml(readFileSync(config.kubeconfig, 'utf8')) as {
        'current-context'?: string;
        contexts?: Array<{ name: string; context?: { user?: string } }>;
      };
      const current = doc['current-context'];
      const user = (current ? doc.contexts?.find((c) => c.name === current) : doc.contexts?.[0])?.context?.user;
      if (user) return `kubeconfig user "${user}" (${config.kubeconfig})${impersonating}`;
    } catch {
      // Unreadable here means it was unreadable when loaded, which has already failed: fall through.
    }
    return `kubeconfig ${config.kubeconfig}${impersonating}`;
  }
  if (config.inCluster.host) return `the pod's ServiceAccount token${impersonating}`;
  return `the default kubeconfig${impersonating}`;
}

function unreachable(server: string, seconds: number, cause: string | undefined): AppError {
  return new AppError(
    'ERR_K8S_UNREACHABLE',
    `cannot reach the API server at ${server}${cause ? ` (${cause})` : ''}; gave up after ${seconds} s (oneShot.unreachableSeconds)`,
  );
}

/**
 * Asks the API server who the caller is, retrying quietly while it cannot be reached, for at most
 * `oneShot.unreachableSeconds`. A 401 ends it at once (the credentials are not accepted); so does a 403 while
 * impersonating (the caller may not impersonate). Any other refusal leaves the identity to the credentials' description.
 */
export async function establishCaller(
  api: FailFastApi,
  o: { config: Config; as?: Impersonation; logger: Logger; server: string; sleep?: (ms: number) => Promise<void> },
): Promise<Caller> {
  const deadline = Date.now() + o.config.oneShot.unreachableSeconds * 1000;
  const credentials = credentialsText(o.config, o.as);
  const pause = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (;;) {
    try {
      const info: UserInfo = await whoAmI(api, Math.max(1000, Math.min(10_000, deadline - Date.now())));
      return { name: info.username || credentials, groups: info.groups, confirmed: info.username !== '' };
    } catch (err) {
      const status = statusOf(err);
      if (status === 401) {
        throw new AppError(
          'ERR_K8S_DENIED',
          `the API server at ${o.server} did not accept the credentials of ${credentials} (401 Unauthorized): renew them or point --config/KUBECONFIG at valid ones`,
        );
      }
      if (status === 403 && o.as) {
        throw new AppError(
          'ERR_K8S_DENIED',
          `${credentials}: the API server refused the impersonation (403 Forbidden): the caller needs 'impersonate' on that user${o.as.groups?.length ? ' and those groups' : ''}`,
        );
      }
      if (status !== undefined && status !== 0) {
        o.logger.debug({ status }, 'SelfSubjectReview refused; naming the credentials instead');
        return { name: credentials, groups: [], confirmed: false };
      }
      if (Date.now() >= deadline)
        throw unreachable(o.server, o.config.oneShot.unreachableSeconds, api.lastConnectionError);
      o.logger.debug({ err: api.lastConnectionError }, 'API server not reachable yet');
      await pause(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
  }
}

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

/** The one line a one-shot command ends with when the API server refused a request. */
export function refusalError(command: OneShotCommand, caller: Caller, refusal: Refusal, config: Config): AppError {
  const who = caller.confirmed ? `user "${caller.name}"` : caller.name;
  const what = requestText(refusal.request);
  const code = refusal.status === 401 ? '401 Unauthorized' : '403 Forbidden';
  const writing = refusal.request.verb === 'create';
  const need =
    command === 'report' || !writing
      ? `${command} needs get, list and watch on CronJobs, Deployments, Services and the job CRs in every namespace, and on ConfigMaps in ${config.phase.namespace} (the phase)`
      : 'import needs to create job CRs as a storage writer';
  return new AppError(
    'ERR_K8S_DENIED',
    `${command} stopped: ${who} may not ${what} (${code}: ${refusalReason(refusal.message)}); ${need}; ${runAsHint(command, config)}`,
  );
}

/**
 * The API server's reason without an admission policy's own text, which is written for tool maintainers ("use
 * 'toolforge jobs run' instead") and would mislead an admin: "… denied request: <text>" keeps "… denied request".
 */
function refusalReason(message: string): string {
  const m = /^(.*?denied (?:the )?request)\b/.exec(message);
  return m?.[1] ?? message;
}

/** The line a one-shot command ends with when the API server stayed unreachable. */
export function unreachableError(server: string, config: Config, api: FailFastApi): AppError {
  return unreachable(server, config.oneShot.unreachableSeconds, api.lastConnectionError);
}

/**
 * The sync run once for `import` and `report`: no election, no backfill grace, the sync's first reconcile and
 * settled writes awaited, then `use`, then everything stopped. It fails fast: the caller is established first (a
 * SelfSubjectReview, retried while the API server is unreachable, for at most `oneShot.unreachableSeconds`); `import`
 * refuses callers that may not write job CRs before writing anything; then the first 401/403 of any request ends the
 * command with one line naming the caller and the request, as does the API server staying unreachable.
 * `whileWriting` runs from the first reconcile (every backfill dispatched) until the writes settle, and returns
 * what stops it (import's progress line). `import` writes IMPORT_BACKFILL_IN_FLIGHT CRs at once.
 */
export async function withOneShotSync<T>(
  options: { configFile: string | undefined; command: OneShotCommand; readOnly: boolean; as?: Impersonation },
  use: (sync: SyncLoop, logger: Logger) => T | Promise<T>,
  whileWriting?: (sync: SyncLoop, logger: Logger) => () => void,
): Promise<T> {
  const parts = await common(
    {
      configFile: options.configFile,
      command: options.command,
      oneShot: true,
      ...(options.as ? { as: options.as } : {}),
    },
    createSyncMetrics,
    (credentials) => new FailFastApi(credentials),
  );
  const { api, logger } = parts;
  const server = api.serverUrl;
  const caller = await establishCaller(api, {
    config: parts.config,
    logger,
    server,
    ...(options.as ? { as: options.as } : {}),
  });
  logger.debug({ caller: caller.name, groups: caller.groups, confirmed: caller.confirmed }, 'running as');
  if (options.command === 'import' && !options.readOnly) checkImportCaller(caller, parts.config);

  const config = { ...parts.config, sync: { ...parts.config.sync, backfillGraceSeconds: 0 } };
  const { phase, sync } = syncParts(
    { ...parts, config },
    {
      elect: false,
      readOnly: options.readOnly,
      ...(options.command === 'import'
        ? { backfillInFlight: IMPORT_BACKFILL_IN_FLIGHT, eventDelayMs: IMPORT_EVENT_DELAY_MS, watchCrs: false }
        : {}),
    },
  );
  const stopped = new AbortController();
  let listDeadline: NodeJS.Timeout | undefined;
  // Every way the command can end early, as one rejection: a refusal, the server gone for too long, the list deadline.
  const failure = new Promise<never>((_, reject) => {
    void api.refused.then((refusal) => reject(refusalError(options.command, caller, refusal, config)));
    const check = setInterval(() => {
      const since = api.unreachableSince;
      if (since !== undefined && Date.now() - since >= config.oneShot.unreachableSeconds * 1000)
        reject(unreachableError(server, config, api));
    }, 250);
    listDeadline = setTimeout(
      () =>
        reject(
          new AppError(
            'ERR_K8S_API',
            `could not list every workload and job CR in ${config.oneShot.listSeconds} s (oneShot.listSeconds); see the log`,
          ),
        ),
      config.oneShot.listSeconds * 1000,
    );
    stopped.signal.addEventListener('abort', () => {
      clearInterval(check);
      clearTimeout(listDeadline);
    });
  });
  failure.catch(() => undefined);
  return withPhase(phase, async () => {
    sync.start();
    try {
      await Promise.race([sync.firstReconcile, failure]);
      // Everything is listed: the deadline was for that, not for the writes (20,000 CRs may take minutes).
      clearTimeout(listDeadline);
      const stopWatching = whileWriting?.(sync, parts.logger);
      try {
        await Promise.race([sync.settled(), failure]);
      } finally {
        stopWatching?.();
      }
      return await use(sync, parts.logger);
    } finally {
      stopped.abort();
      await sync.stop();
    }
  });
}
