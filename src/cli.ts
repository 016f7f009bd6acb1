import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EXIT, defaultIo } from './cli/io.js';
import type { CliIo } from './cli/io.js';
import { AppError, errorMessage } from './errors.js';
import { PHASES } from './phase/behaviour.js';
import type { Phase } from './phase/behaviour.js';

interface MigrateCliOptions {
  tool?: string;
  all: boolean;
  out?: string;
  filename?: string;
  output?: 'yaml' | 'json' | 'markdown';
  phase?: Phase;
  config?: string;
}

interface RestoreCliOptions {
  config?: string;
  tool: string;
  job: string[];
  apply: boolean;
  output: 'yaml' | 'json';
  uid?: number;
}

/** A uid given on the command line: a positive integer (a tool's pods never run as root). */
function parseUid(value: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > 2 ** 31 - 1)
    throw new InvalidArgumentError('must be a positive integer uid');
  return Number(value);
}

/** The command table: each command's options and the module that runs it, loaded only when it runs. */

function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('jobs-storage')
    .description("Guards and backfills Toolforge's job-definition custom resources")
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();

  program
    .command('convert')
    .description('Print the job CR the backfill would write for each workload in a file, or why none')
    .requiredOption('-f, --filename <file>', "YAML or JSON workloads ('-' for stdin)")
    .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { filename: string; output: 'yaml' | 'json'; config?: string }) => {
      const { runConvert } = await import('./cli/commands/convert.js');
      setExit(runConvert(opts, io));
    });

  program
    .command('webhook')
    .description('Serve the admission webhook (HTTPS) until SIGTERM')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const { runWebhookCommand } = await import('./cli/commands/webhook.js');
      setExit(await runWebhookCommand(opts, io));
    });

  program
    .command('sync')
    .description('Run the sync sidecar: watch workloads and job CRs, backfill, export gauges, serve the admin API')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const { runSyncCommand } = await import('./cli/commands/sync.js');
      setExit(await runSyncCommand(opts, io));
    });

  program
    .command('import')
    .description(
      'Initial import: create the CR of every jobs-framework job found without one (never modifies workloads)',
    )
    .option('--dry-run', 'only print what would be created', false)
    .option('--as <user>', 'impersonate this user, e.g. the sync ServiceAccount (README "Who runs import and report")')
    .option('--as-group <group...>', 'impersonate these groups too (needs --as)')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string; dryRun: boolean; as?: string; asGroup?: string[] }) => {
      const { runImport } = await import('./cli/commands/import.js');
      setExit(await runImport(opts, io));
    });

  program
    .command('report')
    .description('Per-tool report: each job, where it exists, what the jobs API lists in this phase, drift')
    .option('--tool <name...>', 'only these tools', [])
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--as <user>', 'impersonate this user (README "Who runs import and report")')
    .option('--as-group <group...>', 'impersonate these groups too (needs --as)')
    .option('--config <file>', 'configuration file (YAML)')
    .action(
      async (opts: { config?: string; tool: string[]; output: 'table' | 'json'; as?: string; asGroup?: string[] }) => {
        const { runReport } = await import('./cli/commands/report.js');
        setExit(await runReport(opts, io));
      },
    );

  program
    .command('migrate')
    .description(
      "Per tool, the jobs not managed through the jobs API: the jobs.yaml that moves them there and a message to the tool's maintainers",
    )
    .option('--tool <name>', "one tool, read from the cluster; prints its jobs.yaml (or -o's format)")
    .option('--all', 'every tool namespace: a folder per tool and an index, written into --out', false)
    .option('--out <dir>', 'with --all: a new or empty directory to write into')
    .option('-f, --filename <file>', "offline: workloads and job CRs from a file ('-' for stdin), grouped by tool")
    .addOption(
      new Option('-o, --output <format>', 'output format (default yaml)').choices(['yaml', 'json', 'markdown']),
    )
    .addOption(
      new Option('--phase <phase>', 'with -f: the phase the message describes (default: phase.initial)').choices(
        PHASES,
      ),
    )
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: MigrateCliOptions) => {
      const { runMigrate } = await import('./cli/commands/migrate.js');
      setExit(await runMigrate(opts, io));
    });

  program
    .command('preflight')
    .description(
      'Per job, what jobs-api would change if it rendered the job from its CR now (exit 0 none, 1 functional, 2 errors)',
    )
    .option('--tool <name...>', 'only these tools', [])
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string; tool: string[]; output: 'table' | 'json' }) => {
      const { runPreflight } = await import('./cli/commands/preflight.js');
      setExit(await runPreflight(opts, io));
    });

  program
    .command('restore')
    .description(
      "Rebuild a tool's lost workloads from their CRs as jobs-api would (dry run unless --apply; create only)",
    )
    .requiredOption('--tool <name>', 'the tool')
    .option('--job <name...>', 'only these jobs (default: every job whose workload is missing)', [])
    .option('--apply', 'create the objects (never replaces or modifies one)', false)
    .option(
      '--uid <n>',
      "the tool's uid for the pods (default: from the tool's Kyverno pod policy, else its remaining workloads)",
      parseUid,
    )
    .addOption(new Option('-o, --output <format>', 'dry-run output format').choices(['yaml', 'json']).default('yaml'))
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: RestoreCliOptions) => {
      const { runRestore } = await import('./cli/commands/restore.js');
      setExit(await runRestore(opts, io));
    });

  const phase = program.command('phase').description('Show or switch the rollout phase (ConfigMap)');
  phase
    .command('get')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const { runPhaseGet } = await import('./cli/commands/phase.js');
      setExit(await runPhaseGet(opts, io));
    });
  phase
    .command('set')
    .addArgument(new Argument('<phase>', 'the phase to switch to').choices(PHASES))
    .option('--reason <text>', 'recorded in the phase history')
    .option('--config <file>', 'configuration file (YAML)')
    .action(async (value: string, opts: { config?: string; reason?: string }) => {
      const { runPhaseSet } = await import('./cli/commands/phase.js');
      setExit(await runPhaseSet(value, opts, io));
    });

  program
    .command('manifests')
    .description(
      'Write the ValidatingWebhookConfiguration and ValidatingAdmissionPolicy generated from the configuration',
    )
    .option('--out <dir>', 'directory to write the files into', 'webhook-config')
    .option('--check', 'write nothing; exit 1 when a file differs from what would be written', false)
    .option('--config <file>', 'configuration file (YAML); the environment is not read')
    .action(async (opts: { out: string; check: boolean; config?: string }) => {
      const { runManifests } = await import('./cli/commands/manifests.js');
      setExit(runManifests(opts, io));
    });

  return program;
}

/** Errors that mean the command line (or the files it names) is wrong, rather than the input's content. */
const USAGE_CODES = new Set(['ERR_USAGE', 'ERR_CONFIG_INVALID', 'ERR_CONFIG_FILE', 'ERR_INPUT_READ']);

/** Runs the CLI and returns the exit code; never calls process.exit itself. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  if (argv.length === 0) {
    io.stderr(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof AppError) {
      io.stderr(`jobs-storage: ${err.message}\n`);
      return USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.inputErrors;
    }
    io.stderr(`jobs-storage: unexpected error: ${errorMessage(err)}\n`);
    return EXIT.inputErrors;
  }
  return code;
}
