import { AppError, errorMessage } from '../../errors.js';
import { createSharedMetrics } from '../../metrics/registry.js';
import { formatPreflightJson, formatPreflightTable } from '../../preflight/preflight.js';
import { readPreflight } from '../../preflight/read.js';
import { runtimeSettings } from '../../sync/track-workload.js';
import { common } from '../compose.js';
import type { CliIo } from '../io.js';

/** Objects per LIST page: preflight holds one page per list and one namespace's objects at a time. */
const PAGE_SIZE = 500;

const TOOL_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `kubectl diff`'s exit codes, which preflight keeps: 0 no functional change, 1 some, 2 an error. */
export const PREFLIGHT_EXIT = { same: 0, functional: 1, error: 2 } as const;

/** Tool names as given on the command line; a name that cannot be a namespace is a usage error. */
export function checkToolNames(tools: readonly string[]): void {
  const bad = tools.filter((t) => !TOOL_NAME.test(t));
  if (bad.length > 0)
    throw new AppError('ERR_USAGE', `--tool: '${bad.join("', '")}' is not a tool name (a lowercase RFC 1123 label)`);
}

/**
 * `jobs-storage preflight`: per job, what jobs-api would change if it rendered the job from its CR now. Reads only;
 * exit 0 when no job would change functionally, 1 when some would, 2 when a job or the cluster could not be read.
 */
export async function runPreflight(
  opts: { config?: string; tool: string[]; output: 'table' | 'json' },
  io: CliIo,
): Promise<number> {
  checkToolNames(opts.tool);
  let report;
  try {
    // Every failure to read, the configuration's included, is exit 2: 1 says that some job would change.
    const { api, config } = await common(
      { configFile: opts.config, command: 'preflight', oneShot: true },
      createSharedMetrics,
    );
    report = await readPreflight(api, { runtime: runtimeSettings(config) }, { tools: opts.tool, pageSize: PAGE_SIZE });
  } catch (err) {
    io.stderr(`jobs-storage: preflight could not read the cluster: ${errorMessage(err)}\n`);
    return PREFLIGHT_EXIT.error;
  }
  io.stdout(opts.output === 'json' ? formatPreflightJson(report) : formatPreflightTable(report));
  return report.exitCode;
}
