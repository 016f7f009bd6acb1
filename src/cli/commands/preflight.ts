import { AppError } from '../../errors.js';
import { createSharedMetrics } from '../../metrics/registry.js';
import {
  exitCodeOf,
  formatToolTable,
  formatTotalsTable,
  type ToolPreflight,
  type Totals,
} from '../../preflight/preflight.js';
import { eachToolPreflight } from '../../preflight/read.js';
import { loadRuntimeSettings as runtimeSettings } from '../../runtime/settings.js';
import { connect, failFast } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { errorText } from '../io.js';
import type { CliIo } from '../io.js';

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
 * Writes the report as its tools arrive, holding none of them: the table tool by tool, or the JSON of
 * `PreflightReport` (`{"tools": [...], "totals": ..., "exitCode": ...}`) one tool at a time.
 */
export function reportWriter(output: 'table' | 'json', io: CliIo) {
  let first = true;
  return {
    tool(tool: ToolPreflight): void {
      if (output === 'table') io.stdout(formatToolTable(tool));
      else {
        const indented = JSON.stringify(tool, null, 2).replaceAll('\n', '\n    ');
        io.stdout(`${first ? '{\n  "tools": [\n' : ',\n'}    ${indented}`);
      }
      first = false;
    },
    end(totals: Totals): void {
      if (output === 'table') {
        io.stdout(formatTotalsTable(totals));
        return;
      }
      const totalsJson = JSON.stringify(totals, null, 2).replaceAll('\n', '\n  ');
      io.stdout(
        `${first ? '{\n  "tools": [' : '\n  '}],\n  "totals": ${totalsJson},\n  "exitCode": ${exitCodeOf(totals)}\n}\n`,
      );
    },
  };
}

/**
 * `jobs-storage preflight`: per job, what jobs-api would change if it rendered the job from its CR now. Reads only;
 * exit 0 when no job would change functionally, 1 when some would, 2 when a job or the cluster could not be read.
 * Tools are written as they are compared (cluster-wide: in the API server's namespace order).
 */
export async function runPreflight(
  opts: ClusterFlags & { tool: string[]; output: 'table' | 'json' },
  io: CliIo,
): Promise<number> {
  checkToolNames(opts.tool);
  const writer = reportWriter(opts.output, io);
  let totals: Totals;
  try {
    // Every failure to read, the configuration's and the connection's included, is exit 2: 1 says that some job
    // would change. The line is the one every cluster command ends with (src/cli/cluster.ts).
    const session = await connect(opts, 'preflight', io, createSharedMetrics);
    totals = await failFast(session, () =>
      eachToolPreflight(session.api, { runtime: runtimeSettings(session.config) }, { tools: opts.tool }, writer.tool),
    );
  } catch (err) {
    if (err instanceof AppError && err.code === 'ERR_USAGE') throw err;
    io.stderr(`jobs-storage: ${errorText(err)}\n`);
    return PREFLIGHT_EXIT.error;
  }
  writer.end(totals);
  return exitCodeOf(totals);
}
