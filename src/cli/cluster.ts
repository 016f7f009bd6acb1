/**
 * The one way every cluster command (import, report, preflight, restore, migrate, phase get/set) reaches the API
 * server, and the one way it fails, as kubectl does:
 *
 * - kubectl's global flags: `--kubeconfig`, `--context`, `--as`, `--as-group`; `-v` for log lines.
 * - A missing or empty kubeconfig is a configuration error at once (exit 2); nothing is retried.
 * - The caller is established first (a SelfSubjectReview). While the API server cannot be reached, that and every
 *   later GET are retried for `oneShot.unreachableSeconds` (default 20 s) since it was last reached, then the command
 *   ends with one line naming the server; never a raw `connect ECONNREFUSED`.
 * - A 401 ends it at once naming the credentials; a 403 names the API identity, the verb and resource refused, and
 *   what the command needs.
 * - Log lines (NDJSON on stderr) only with `-v`, terminal or not: without it stderr carries only the command's own
 *   lines (progress, warnings, the one line it fails with).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type pino from 'pino';
import type { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { AppError, ConfigError, UsageError, errorMessage } from '../errors.js';
import { loadCredentials, withImpersonation } from '../k8s/credentials.js';
import type { Impersonation, KubeCredentials } from '../k8s/credentials.js';
import { statusOf } from '../k8s/errors.js';
import type { LazyListPage, ListPage } from '../k8s/api.js';
import { FailFastApi, describeRequest, requestText } from '../k8s/fail-fast.js';
import type { Refusal } from '../k8s/fail-fast.js';
import { whoAmI } from '../k8s/identity.js';
import type { UserInfo } from '../k8s/identity.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { createProcessRegistry } from '../metrics/registry.js';
import type { SharedMetrics } from '../metrics/registry.js';
import { VERSION } from '../version.js';
import type { Common } from './compose.js';
import type { CliIo } from './io.js';

/** The global flags of every cluster command (kubectl's), and the command's `--config`. */
export interface ClusterFlags {
  config?: string;
  kubeconfig?: string;
  context?: string;
  as?: string;
  asGroup?: string[];
  verbose?: boolean;
}

export type ClusterCommand = 'import' | 'report' | 'preflight' | 'restore' | 'migrate' | 'phase get' | 'phase set';

/** Who the command runs as: from the API server when it says, else the credentials it was given. */
export interface Caller {
  /** The API server's username, or a description of the credentials when the server did not say. */
  name: string;
  groups: string[];
  /** Whether the API server confirmed `name` (SelfSubjectReview). */
  confirmed: boolean;
}

/** A cluster command's parts: the configuration, a logger, metrics, the API client and who the caller is. */
export interface Session<M extends SharedMetrics = SharedMetrics> extends Common<M, CliApi> {
  command: ClusterCommand;
  caller: Caller;
  /** The API server's address, for messages. */
  server: string;
  /** `--context`, when given. */
  context?: string;
  as?: Impersonation;
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

/**
 * The log level of a cluster command: nothing without `-v` (the command's own lines say what happened); with it,
 * debug, or trace when the configuration asks for it.
 */
export function cliLogLevel(verbose: boolean, configured: string): string {
  if (!verbose) return 'silent';
  return configured === 'trace' ? 'trace' : 'debug';
}

/** kubectl's default kubeconfig, used when neither `--kubeconfig`, KUBECONFIG nor a pod's ServiceAccount says. */
export function defaultKubeconfigPath(home: string = homedir()): string {
  return join(home, '.kube', 'config');
}

/**
 * The kubeconfig the command uses: the configured one (`--kubeconfig`, KUBECONFIG, the config file), else the pod's
 * ServiceAccount in a pod, else `~/.kube/config`. None of them is a configuration error, at once: a client that fell
 * back to `localhost` would retry a connection that can never succeed.
 */
export function withKubeconfig(config: Config, defaultPath: string = defaultKubeconfigPath()): Config {
  if (config.kubeconfig || config.inCluster.host) return config;
  if (!existsSync(defaultPath))
    throw new ConfigError([
      `no kubeconfig: give --kubeconfig FILE, set KUBECONFIG or create ${defaultPath} (kubectl's default)`,
    ]);
  return { ...config, kubeconfig: defaultPath };
}

/** The sync's ServiceAccount username: the storage writer in the product's own namespace. */
export function syncServiceAccount(config: Config): string | undefined {
  const prefix = `system:serviceaccount:${config.phase.namespace}:`;
  return config.identities.storageWriters.find((w) => w.startsWith(prefix));
}

/** What to run instead, for the messages of `import` and `report`. */
export function runAsHint(command: 'import' | 'report', config: Config): string {
  const sa = syncServiceAccount(config);
  return sa
    ? `run it as the sync's ServiceAccount: 'jobs-storage ${command} --as ${sa}' (needs impersonation, which cluster admins have; README "Who runs import and report")`
    : `run it as an identity in identities.storageWriters (README "Who runs import and report")`;
}

/** The credentials in use, in words, for when the API server does not tell who they are. */
export function credentialsText(config: Config, as?: Impersonation, context?: string): string {
  const impersonating = as ? `, impersonating "${as.user}"` : '';
  if (config.kubeconfig) {
    try {
      const doc = parseYaml(readFileSync(config.kubeconfig, 'utf8')) as {
        'current-context'?: string;
        contexts?: Array<{ name: string; context?: { user?: string } }>;
      };
      const current = context || doc['current-context'];
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

/** The line a cluster command ends with when the API server stayed unreachable. */
export function unreachableError(server: string, config: Config, api: FailFastApi): AppError {
  return unreachable(server, config.oneShot.unreachableSeconds, api.lastConnectionError);
}

const pause = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether an error (or one of its causes) never reached the API server: refused, reset, no answer in time. */
function isConnectionFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    const status = statusOf(e);
    if (status !== undefined) return status === 0;
    e = e instanceof Error ? e.cause : undefined;
  }
  return true;
}

/** The HTTP status of an error or of the first of its causes that has one. */
function statusInChain(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    const status = statusOf(e);
    if (status !== undefined) return status;
    e = e instanceof Error ? e.cause : undefined;
  }
  return undefined;
}

/**
 * The API client of the cluster commands: FailFastApi (the first refusal settles `refused`; the time since the API
 * server was last reached is tracked) that also keeps the last refusal, so the line a command ends with names the
 * request that was refused, and retries a GET that did not reach the API server until it has been unreachable for
 * `unreachableSeconds` (a GET changes nothing, so repeating it is safe; writes are never repeated).
 */
export class CliApi extends FailFastApi {
  private refusal: Refusal | undefined;

  constructor(
    source: KubeCredentials,
    private readonly unreachableSeconds: number,
    private readonly sleep: (ms: number) => Promise<void> = pause,
  ) {
    super(source);
  }

  /** The last request the API server refused (401/403), if any. */
  get lastRefusal(): Refusal | undefined {
    return this.refusal;
  }

  override async request<T>(
    method: string,
    path: string,
    options: {
      query?: Record<string, string | number | boolean | undefined>;
      body?: unknown;
      contentType?: string;
      accept?: string;
      timeoutMs?: number;
    } = {},
  ): Promise<T> {
    for (;;) {
      try {
        return await super.request<T>(method, path, options);
      } catch (err) {
        this.noteRefusal(method, path, err);
        const since = this.unreachableSince;
        const retry =
          method.toUpperCase() === 'GET' &&
          isConnectionFailure(err) &&
          since !== undefined &&
          Date.now() - since < this.unreachableSeconds * 1000;
        if (!retry) throw err;
        await this.sleep(1000);
      }
    }
  }

  override listPages<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined> & { limit: number },
  ): AsyncGenerator<ListPage<T>>;
  override listPages<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined> & { limit: number },
    items: 'lazy',
  ): AsyncGenerator<LazyListPage<T>>;
  override async *listPages<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined> & { limit: number },
    items: 'array' | 'lazy' = 'array',
  ): AsyncGenerator<ListPage<T> | LazyListPage<T>> {
    try {
      if (items === 'lazy') yield* super.listPages<T>(path, query, 'lazy');
      else yield* super.listPages<T>(path, query);
    } catch (err) {
      this.noteRefusal('GET', path, err);
      throw err;
    }
  }

  private noteRefusal(method: string, path: string, err: unknown): void {
    const status = statusOf(err);
    if (status === 401 || status === 403)
      this.refusal = { status, request: describeRequest(method, path), message: errorMessage(err) };
  }
}

/**
 * Asks the API server who the caller is, retrying quietly while it cannot be reached, for at most
 * `oneShot.unreachableSeconds`. A 401 ends it at once (the credentials are not accepted); so does a 403 while
 * impersonating (the caller may not impersonate). Any other refusal leaves the identity to the credentials' description.
 */
export async function establishCaller(
  api: FailFastApi,
  o: {
    config: Config;
    as?: Impersonation;
    context?: string;
    logger: Logger;
    server: string;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<Caller> {
  const deadline = Date.now() + o.config.oneShot.unreachableSeconds * 1000;
  const credentials = credentialsText(o.config, o.as, o.context);
  const sleep = o.sleep ?? pause;
  for (;;) {
    try {
      const info: UserInfo = await whoAmI(api, Math.max(1000, Math.min(10_000, deadline - Date.now())));
      return { name: info.username || credentials, groups: info.groups, confirmed: info.username !== '' };
    } catch (err) {
      const status = statusOf(err);
      if (status === 401) {
        throw new AppError(
          'ERR_K8S_DENIED',
          `the API server at ${o.server} did not accept the credentials of ${credentials} (401 Unauthorized): renew them or point --kubeconfig/KUBECONFIG at valid ones`,
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
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
  }
}

/** What each command needs of RBAC, for the line it ends with when refused. */
function needOf(command: ClusterCommand, refusal: Refusal, config: Config): string {
  const phaseMap = `ConfigMap ${config.phase.namespace}/${config.phase.name}`;
  const everywhere = 'CronJobs, Deployments, Services and the job CRs in every namespace';
  switch (command) {
    case 'report':
      return `report needs get, list and watch on ${everywhere}, and on ConfigMaps in ${config.phase.namespace} (the phase)`;
    case 'import':
      return refusal.request.verb === 'create'
        ? 'import needs to create job CRs as a storage writer'
        : `import needs get, list and watch on ${everywhere}, and on ConfigMaps in ${config.phase.namespace} (the phase)`;
    case 'preflight':
      return 'preflight needs get and list on namespaces, and on CronJobs, Deployments, Services and the job CRs in the tool namespaces';
    case 'restore':
      return "restore needs get and list on the tool's CronJobs, Deployments, Services and job CRs, and create on CronJobs, Deployments and Services with --apply";
    case 'migrate':
      return `migrate needs get and list on namespaces, CronJobs, Deployments, Services and the job CRs, and get on ${phaseMap} (the phase)`;
    case 'phase get':
      return `phase get needs get on ${phaseMap}`;
    case 'phase set':
      return `phase set needs get and update on ${phaseMap} (create in ${config.phase.namespace} while it does not exist)`;
  }
}

/**
 * The API server's reason without an admission policy's own text, which is written for tool maintainers ("use
 * 'toolforge jobs run' instead") and would mislead an admin: "… denied request: <text>" keeps "… denied request".
 */
function refusalReason(message: string): string {
  const m = /^(.*?denied (?:the )?request)\b/.exec(message);
  return m?.[1] ?? message;
}

/**
 * The one line a cluster command ends with when the API server refused a request: who (the API identity), what
 * (verb, resource, namespace, name), the status and the server's reason, what the command needs, and for import and
 * report which identity to run them as.
 */
export function refusalError(command: ClusterCommand, caller: Caller, refusal: Refusal, config: Config): AppError {
  const who = caller.confirmed ? `user "${caller.name}"` : caller.name;
  const code = refusal.status === 401 ? '401 Unauthorized' : '403 Forbidden';
  const hint = command === 'import' || command === 'report' ? `; ${runAsHint(command, config)}` : '';
  return new AppError(
    'ERR_K8S_DENIED',
    `${command} stopped: ${who} may not ${requestText(refusal.request)} (${code}: ${refusalReason(refusal.message)}); ${needOf(command, refusal, config)}${hint}`,
  );
}

/** A pino destination writing to the CLI's stderr (tests read it; `-v` lines never mix with stdout's output). */
function stderrDestination(io: CliIo): pino.DestinationStream {
  return { write: (line: string) => io.stderr(line) };
}

/**
 * Connects a cluster command: the configuration (`--kubeconfig` over KUBECONFIG over the config file), the kubeconfig
 * (`--context`), the impersonation (`--as`), then who the caller is (the fail-fast wait for an unreachable server, the
 * 401 and impersonation checks). Throws the one line to end with; nothing has been written.
 */
export async function connect<M extends SharedMetrics>(
  flags: ClusterFlags,
  command: ClusterCommand,
  io: CliIo,
  createMetrics: (registry: Registry) => M,
): Promise<Session<M>> {
  const as = impersonation(flags);
  const config = withKubeconfig(
    loadConfig({ file: flags.config, ...(flags.kubeconfig ? { overrides: { kubeconfig: flags.kubeconfig } } : {}) }),
  );
  const logger = createLogger({
    level: cliLogLevel(flags.verbose === true, config.logLevel),
    base: { command, version: VERSION },
    destination: stderrDestination(io),
  });
  const metrics = createMetrics(createProcessRegistry());
  metrics.buildInfo.set({ version: VERSION }, 1);
  const context = flags.context || undefined;
  const credentials = await loadCredentials(config, context ? { context } : {});
  const api = new CliApi(as ? withImpersonation(credentials, as) : credentials, config.oneShot.unreachableSeconds);
  const server = api.serverUrl;
  const extra = { ...(as ? { as } : {}), ...(context ? { context } : {}) };
  const caller = await establishCaller(api, { config, logger, server, ...extra });
  logger.debug({ caller: caller.name, groups: caller.groups, confirmed: caller.confirmed, server }, 'running as');
  return { config, logger, metrics, api, command, caller, server, ...extra };
}

/**
 * The one line for an error a cluster command ended with: a refusal names the request refused (`refusalError`), a
 * request that never reached the API server the server (`unreachableError`); errors that already say what happened
 * pass as they are.
 */
export function explain(session: Session, err: unknown): AppError {
  const { api, caller, command, config, server } = session;
  if (err instanceof AppError && err.code !== 'ERR_K8S_API') return err;
  const status = statusInChain(err);
  const refusal = api.lastRefusal;
  if ((status === 401 || status === 403) && refusal !== undefined)
    return refusalError(command, caller, refusal, config);
  // "Gave up after N s" only when that long has passed; a connection lost on a request that is not retried (a list
  // page) is named as it is.
  const since = api.unreachableSince;
  if (isConnectionFailure(err) && since !== undefined && Date.now() - since >= config.oneShot.unreachableSeconds * 1000)
    return unreachableError(server, config, api);
  if (err instanceof AppError) return err;
  return new AppError('ERR_K8S_API', `${command}: ${errorMessage(err)}`, { cause: err });
}

/**
 * Runs a cluster command's work and ends it the one way: an error becomes its one line (`explain`). `run` gets
 * `failure`, which rejects with that line at the first refusal or once the API server has been unreachable for
 * `oneShot.unreachableSeconds`: a command whose requests are retried behind its back (the informers of import and
 * report) races its waits against it; a command that makes its own requests may ignore it.
 */
export async function failFast<T>(session: Session, run: (failure: Promise<never>) => Promise<T>): Promise<T> {
  const { api, caller, command, config, server } = session;
  let check: NodeJS.Timeout | undefined;
  const failure = new Promise<never>((_, reject) => {
    void api.refused.then((refusal) => reject(refusalError(command, caller, refusal, config)));
    check = setInterval(() => {
      const since = api.unreachableSince;
      if (since !== undefined && Date.now() - since >= config.oneShot.unreachableSeconds * 1000)
        reject(unreachableError(server, config, api));
    }, 250);
  });
  failure.catch(() => undefined);
  try {
    return await run(failure);
  } catch (err) {
    throw explain(session, err);
  } finally {
    clearInterval(check);
  }
}
