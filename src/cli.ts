import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ClusterFlags } from './cli/cluster.js';
import { EXIT, defaultIo, errorText, writeDocument } from './cli/io.js';
import type { CliIo, DocumentFormat } from './cli/io.js';
import { untilSignal } from './cli/process.js';
import type { Process } from './cli/process.js';
import { AppError, errorMessage } from './errors.js';
import { PHASES } from './rollout/phases.js';
import type { Phase } from './rollout/phases.js';
import { VERSION, buildInfo } from './version.js';

interface MigrateCliOptions extends ClusterFlags {
  tool?: string;
  all: boolean;
  out?: string;
  filename?: string;
  output?: 'yaml' | 'json' | 'markdown';
  phase?: Phase;
  config?: string;
}

interface RestoreCliOptions extends ClusterFlags {
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

/**
 * One command of the table: its help, arguments and options, and what it runs, loaded only when it runs. A one-shot
 * command (`run`) returns its exit code; a daemon (`daemon`) returns a `Process`, which `main` runs under
 * `untilSignal`.
 */
interface CommandSpec<O> {
  name: string;
  description?: string;
  arguments?: readonly Argument[];
  options?: readonly Option[];
  run?: (opts: O, io: CliIo, args: readonly string[]) => number | Promise<number>;
  daemon?: (opts: O) => Promise<Process>;
  commands?: readonly CommandRow[];
}

/** A table row: a `CommandSpec` whose options' type is checked where it is written. */
interface CommandRow extends Omit<CommandSpec<never>, 'run' | 'daemon'> {
  action?: (opts: unknown, io: CliIo, args: readonly string[]) => Promise<number>;
}

/** commander hands each action its options untyped; a row's spec says what they are. */
function command<O>(spec: CommandSpec<O>): CommandRow {
  const { run, daemon, ...rest } = spec;
  if (run !== undefined) return { ...rest, action: async (opts, io, args) => run(opts as O, io, args) };
  if (daemon !== undefined)
    return {
      ...rest,
      action: async (opts) => {
        await untilSignal(await daemon(opts as O));
        return EXIT.ok;
      },
    };
  return rest;
}

const config = (description = 'configuration file (YAML)'): Option => new Option('--config <file>', description);
const tools = (): Option => new Option('--tool <name...>', 'only these tools').default([]);
/** `-o json|yaml` on a command whose default output is for people. */
const documentOutput = (): Option =>
  new Option('-o, --output <format>', 'print the result as one JSON or YAML document').choices(['json', 'yaml']);
const output = (choices: string[], fallback?: string, description = 'output format'): Option => {
  const option = new Option('-o, --output <format>', description).choices(choices);
  return fallback === undefined ? option : option.default(fallback);
};

/** The command table: each command's options and the module that runs it. Built per call (commander keeps state). */
function commandTable(): readonly CommandRow[] {
  return [
    command<{ filename: string; output: 'yaml' | 'json'; config?: string }>({
      name: 'convert',
      description: 'Print the job CR the backfill would write for each workload in a file, or why none',
      options: [
        new Option('-f, --filename <file>', "YAML or JSON workloads ('-' for stdin)").makeOptionMandatory(),
        output(['yaml', 'json'], 'yaml'),
        config(),
      ],
      run: async (opts, io) => (await import('./cli/commands/convert.js')).runConvert(opts, io),
    }),
    command<{ config?: string }>({
      name: 'webhook',
      description: 'Serve the admission webhook (HTTPS) until SIGTERM',
      options: [config()],
      daemon: async (opts) => (await import('./cli/commands/webhook.js')).webhookCommand(opts),
    }),
    command<{ config?: string }>({
      name: 'sync',
      description: 'Run the sync sidecar: watch workloads and job CRs, backfill, export gauges, serve the admin API',
      options: [config()],
      daemon: async (opts) => (await import('./cli/commands/sync.js')).syncCommand(opts),
    }),
    command<ClusterFlags & { dryRun: boolean; output?: DocumentFormat }>({
      name: 'import',
      description:
        'Initial import: create the CR of every jobs-framework job found without one (never modifies workloads); ' +
        'run it as the sync ServiceAccount with --as (README "Who runs import and report")',
      options: [new Option('--dry-run', 'only print what would be created').default(false), documentOutput(), config()],
      run: async (opts, io) => (await import('./cli/commands/import.js')).runImport(opts, io),
    }),
    command<ClusterFlags & { tool: string[]; output: 'table' | 'json' | 'yaml' }>({
      name: 'report',
      description: 'Per-tool report: each job, where it exists, what the jobs API lists in this phase, drift',
      options: [tools(), output(['table', 'json', 'yaml'], 'table'), config()],
      run: async (opts, io) => (await import('./cli/commands/report.js')).runReport(opts, io),
    }),
    command<MigrateCliOptions>({
      name: 'migrate',
      description:
        "Per tool, the jobs not managed through the jobs API: the jobs.yaml that moves them there and a message to the tool's maintainers",
      options: [
        new Option('--tool <name>', "one tool, read from the cluster; prints its jobs.yaml (or -o's format)"),
        new Option('--all', 'every tool namespace: a folder per tool and an index, written into --out').default(false),
        new Option('--out <dir>', 'with --all: a new or empty directory to write into'),
        new Option(
          '-f, --filename <file>',
          "offline: workloads and job CRs from a file ('-' for stdin), grouped by tool",
        ),
        output(['yaml', 'json', 'markdown'], undefined, 'output format (default yaml)'),
        new Option('--phase <phase>', 'with -f: the phase the message describes (default: phase.initial)').choices(
          PHASES,
        ),
        config(),
      ],
      run: async (opts, io) => (await import('./cli/commands/migrate.js')).runMigrate(opts, io),
    }),
    command<ClusterFlags & { tool: string[]; output: 'table' | 'json' }>({
      name: 'preflight',
      description:
        'Per job, what jobs-api would change if it rendered the job from its CR now (exit 0 none, 1 functional, 2 errors)',
      options: [tools(), output(['table', 'json'], 'table'), config()],
      run: async (opts, io) => (await import('./cli/commands/preflight.js')).runPreflight(opts, io),
    }),
    command<RestoreCliOptions>({
      name: 'restore',
      description:
        "Rebuild a tool's lost workloads from their CRs as jobs-api would (dry run unless --apply; create only)",
      options: [
        new Option('--tool <name>', 'the tool').makeOptionMandatory(),
        new Option('--job <name...>', 'only these jobs (default: every job whose workload is missing)').default([]),
        new Option('--apply', 'create the objects (never replaces or modifies one)').default(false),
        new Option(
          '--uid <n>',
          "the tool's uid for the pods (default: from the tool's Kyverno pod policy, else its remaining workloads)",
        ).argParser(parseUid),
        output(['yaml', 'json'], 'yaml', 'dry-run output format'),
        config(),
      ],
      run: async (opts, io) => (await import('./cli/commands/restore.js')).runRestore(opts, io),
    }),
    {
      name: 'phase',
      description: 'Show or switch the rollout phase (ConfigMap)',
      commands: [
        command<ClusterFlags & { output?: DocumentFormat }>({
          name: 'get',
          description: 'The phase in force and its last changes',
          options: [documentOutput(), config()],
          run: async (opts, io) => (await import('./cli/commands/phase.js')).runPhaseGet(opts, io),
        }),
        command<ClusterFlags & { reason?: string; yes: boolean; output?: DocumentFormat }>({
          name: 'set',
          description:
            "Switch the phase, recorded in its history as made by the caller's API identity; asks before enforce",
          arguments: [new Argument('<phase>', 'the phase to switch to').choices(PHASES)],
          options: [
            new Option('--reason <text>', 'recorded in the phase history'),
            new Option('-y, --yes', 'switch to enforce without asking (needed when stdin is not a terminal)').default(
              false,
            ),
            documentOutput(),
            config(),
          ],
          run: async (opts, io, [value]) =>
            (await import('./cli/commands/phase.js')).runPhaseSet(value ?? '', opts, io),
        }),
      ],
    },
    command<{ output?: DocumentFormat }>({
      name: 'version',
      description: 'The version of this build, its git commit when known, and the Node.js version running it',
      options: [documentOutput()],
      run: (opts, io) => {
        const info = buildInfo();
        if (opts.output !== undefined) writeDocument(io, info, opts.output);
        else
          io.stdout(
            `jobs-storage ${info.version}${info.gitCommit ? ` (git ${info.gitCommit.slice(0, 12)})` : ''}, node ${info.node}\n`,
          );
        return EXIT.ok;
      },
    }),
    command<{ out: string; check: boolean; config?: string }>({
      name: 'manifests',
      description:
        'Write the ValidatingWebhookConfiguration and ValidatingAdmissionPolicy generated from the configuration',
      options: [
        new Option('--out <dir>', 'directory to write the files into').default('webhook-config'),
        new Option('--check', 'write nothing; exit 1 when a file differs from what would be written').default(false),
        config('configuration file (YAML); the environment is not read'),
      ],
      run: async (opts, io) => (await import('./cli/commands/manifests.js')).runManifests(opts, io),
    }),
  ];
}

/** Where the CLI is while it parses and runs: the command whose usage an error is about. */
interface Run {
  io: CliIo;
  setExit: (code: number) => void;
  /** `jobs-storage phase set`: the command running, for "see '… --help'". */
  command: string;
}

/** The line after a usage error: where the command's usage is. */
const seeHelp = (command: string): string => `see '${command} --help'\n`;

/**
 * A usage error as one line (what was wrong, without commander's "error: ") and where to read the usage, not the
 * whole help.
 */
function usageOutput(cmd: Command, io: CliIo): void {
  cmd.configureOutput({
    writeOut: io.stdout,
    writeErr: io.stderr,
    outputError: (text, write) =>
      write(`jobs-storage: ${text.trim().replace(/^error: /, '')}\n${seeHelp(commandPath(cmd))}`),
  });
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds `spec` (and its subcommands) to `parent`; each action reports its exit code to `run.setExit`. */
function addCommand(parent: Command, spec: CommandRow, run: Run): void {
  const cmd = parent.command(spec.name);
  usageOutput(cmd, run.io);
  if (spec.description !== undefined) cmd.description(spec.description);
  for (const argument of spec.arguments ?? []) cmd.addArgument(argument);
  for (const option of spec.options ?? []) cmd.addOption(option);
  for (const sub of spec.commands ?? []) addCommand(cmd, sub, run);
  const { action } = spec;
  if (action === undefined) return;
  cmd.action(async (...args: unknown[]) => {
    // commander passes the arguments, then the options, then the command itself; the global flags (--kubeconfig,
    // --context, --as, --as-group, -v) are the program's options, merged in.
    const positional = args.slice(0, -2).map(String);
    run.command = commandPath(cmd);
    run.setExit(await action(cmd.optsWithGlobals(), run.io, positional));
  });
}

/** kubectl's flags, accepted before or after the command by every command; those that do not talk to the cluster ignore them. */
function globalOptions(): Option[] {
  return [
    new Option('--kubeconfig <file>', 'the kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config)'),
    new Option('--context <name>', 'the kubeconfig context to use instead of its current context'),
    new Option('--as <user>', 'impersonate this user, e.g. the sync ServiceAccount for import and report'),
    new Option('--as-group <group...>', 'impersonate these groups too (needs --as)'),
    new Option('-v, --verbose', "log lines (NDJSON) on stderr; without it, only the command's own lines").default(
      false,
    ),
  ];
}

function buildProgram(run: Run): Command {
  const program = new Command('jobs-storage')
    .description("Guards and backfills Toolforge's job-definition custom resources")
    .version(VERSION, '-V, --version', 'print the version')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      '\nCommands that talk to the cluster wait for an unreachable API server for oneShot.unreachableSeconds ' +
        '(default 20 s), then end with one line; a refusal (401/403) or a missing kubeconfig ends them at once.\n' +
        'Exit codes: 0 success, 1 input errors, refused or unreachable, 2 usage or configuration errors ' +
        '(preflight: 0 no change, 1 functional changes, 2 errors).\n',
    )
    .exitOverride();
  usageOutput(program, run.io);
  for (const option of globalOptions()) program.addOption(option);
  for (const spec of commandTable()) addCommand(program, spec, run);
  return program;
}

/** Errors that mean the command line (or the files it names) is wrong, rather than the input's content. */
const USAGE_CODES = new Set(['ERR_USAGE', 'ERR_CONFIG_INVALID', 'ERR_CONFIG_FILE', 'ERR_INPUT_READ']);

/** An error's one line (a configuration error with a single issue included), and the usage hint for usage errors. */
function errorLines(err: AppError, command: string): string {
  return `jobs-storage: ${errorText(err)}\n${err.code === 'ERR_USAGE' ? seeHelp(command) : ''}`;
}

/** Runs the CLI and returns the exit code; never calls process.exit itself. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let code: number = EXIT.ok;
  const run: Run = { io, setExit: (c) => (code = c), command: 'jobs-storage' };
  const program = buildProgram(run);
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
      io.stderr(errorLines(err, run.command));
      return USAGE_CODES.has(err.code)
        ? err.code === 'ERR_CONFIG_INVALID'
          ? EXIT.config
          : EXIT.usage
        : EXIT.inputErrors;
    }
    io.stderr(`jobs-storage: unexpected error: ${errorMessage(err)}\n`);
    return EXIT.inputErrors;
  }
  return code;
}
