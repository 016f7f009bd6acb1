import { join as shlexJoin, split as shlexSplit } from 'shlex';
import { ok, problem } from '../errors.js';
import type { Result } from '../errors.js';
import { normalizePosixPath } from '../jobs/index.js';

/**
 * Container command layouts of every jobs-api era, and the parse rules of jobs-api's `get_command_from_k8s`
 * (tjf/runtimes/k8s/command.py), extended to the pre-2021-07-12 layout that jobs-api itself cannot parse.
 */

export const COMMAND_WRAPPER: readonly string[] = ['/bin/sh', '-c', '--'];
const STDOUT_PREFIX = 'exec 1>>';
const STDERR_PREFIX = 'exec 2>>';

export type CommandLayout =
  /** `command: [<cmd>]`, no shell, no redirects (v1 before 2021-07-12). */
  | 'unwrapped'
  /** `/bin/sh -c -- "<cmd> 1>>OUT 2>>ERR"` (v1; `1>/dev/null` without filelog). */
  | 'trailing-redirects'
  /** `/bin/sh -c -- "exec 1>>OUT;exec 2>>ERR;<cmd>"` (v1 command-new-format, v2 with filelog). */
  | 'exec-redirects'
  /** `/bin/sh -c -- "<cmd>"` (v2 without filelog). */
  | 'shell'
  /** `command: shlex.split("launcher <cmd>")` (buildservice without filelog, since 2026-06-29). */
  | 'shell-less'
  /** `command: [first]`, `args: [rest…]` (buildservice, 2023-05 to 2024-02). */
  | 'split-args';

export interface ParsedCommand {
  cmd: string;
  filelog: boolean;
  filelog_stdout: string | null;
  filelog_stderr: string | null;
  layout: CommandLayout;
}

export interface CommandInput {
  labels: Readonly<Record<string, string>>;
  jobName: string;
  command: readonly string[];
  args: readonly string[];
}

/** A parsed command, and whether jobs-api's own parser fails on it; a problem's path is `command` or `args`. */
export type CommandResult = Result<{ command: ParsedCommand; jobsApiFails: boolean }>;

function isWrapped(command: readonly string[]): boolean {
  return command.length === COMMAND_WRAPPER.length + 1 && COMMAND_WRAPPER.every((part, i) => command[i] === part);
}

function splitExecRedirects(spec: string): { cmd: string; stdout: string; stderr: string } | null {
  const items = spec.split(';');
  if (items.length < 2) return null;
  return {
    cmd: items.slice(2).join(';'),
    stdout: normalizePosixPath((items[0] ?? '').replace(STDOUT_PREFIX, '')),
    stderr: normalizePosixPath((items[1] ?? '').replace(STDERR_PREFIX, '')),
  };
}

function orUnknown(cmd: string): string {
  return cmd === '' ? 'unknown' : cmd;
}

/**
 * The version label (missing → 1) and `command-new-format` (missing → "no" on v1, "yes" after) choose the rule:
 * old format cuts the command at the last " 1>", new format splits "exec …;exec …;<cmd>" or takes the shell string.
 */
export function parseCommand(input: CommandInput, version: number): CommandResult {
  const { labels, command, args } = input;
  const spec = command.at(-1);
  if (spec === undefined) return problem('command', 'must have at least one element');
  const filelog = (labels['jobs.toolforge.org/filelog'] ?? 'no') === 'yes';
  const newFormat = (labels['jobs.toolforge.org/command-new-format'] ?? (version === 1 ? 'no' : 'yes')) === 'yes';

  if (newFormat) {
    if (filelog || version === 1) {
      const parts = splitExecRedirects(spec);
      if (parts === null) {
        return problem('command', `expected "${STDOUT_PREFIX}OUT;${STDERR_PREFIX}ERR;<command>" in the last element`);
      }
      return ok({
        jobsApiFails: false,
        command: {
          cmd: orUnknown(parts.cmd),
          filelog,
          filelog_stdout: parts.stdout,
          filelog_stderr: parts.stderr,
          layout: 'exec-redirects',
        },
      });
    }
    const wrapped = isWrapped(command);
    const cmd = wrapped ? spec : shlexJoin([...command, ...args]);
    const layout: CommandLayout = wrapped ? 'shell' : args.length > 0 ? 'split-args' : 'shell-less';
    return ok({
      jobsApiFails: false,
      command: {
        cmd: orUnknown(cmd),
        filelog,
        filelog_stdout: null,
        filelog_stderr: null,
        layout,
      },
    });
  }

  return parseOldFormat(input, spec, filelog);
}

function parseOldFormat(input: CommandInput, spec: string, filelog: boolean): CommandResult {
  const { command, args } = input;
  const cut = spec.lastIndexOf(' 1>');
  if (cut < 0) {
    // jobs-api raises here (str.rindex); the command ran as written, with no shell and no redirects.
    const cmd = command.length === 1 && args.length === 0 ? spec : shlexJoin([...command, ...args]);
    return ok({
      jobsApiFails: true,
      command: {
        cmd: orUnknown(cmd),
        filelog: false,
        filelog_stdout: null,
        filelog_stderr: null,
        layout: 'unwrapped',
      },
    });
  }
  const logs = filelog
    ? {
        filelog_stdout: `${input.jobName}.out`,
        filelog_stderr: `${input.jobName}.err`,
      }
    : { filelog_stdout: '/dev/null', filelog_stderr: '/dev/null' };
  return ok({
    jobsApiFails: false,
    command: {
      cmd: orUnknown(spec.slice(0, cut)),
      filelog,
      ...logs,
      layout: 'trailing-redirects',
    },
  });
}

export interface CommandSpec {
  cmd: string;
  filelog_stdout: string | null | undefined;
  filelog_stderr: string | null | undefined;
  buildservice: boolean;
}

export type RenderedCommand = Result<string[]>;

/**
 * jobs-api `get_command_for_k8s` (current): buildservice commands get a "launcher " prefix; without log files a
 * buildservice command runs without a shell, otherwise the shell wrapper carries the redirects.
 */
export function renderCommand(spec: CommandSpec): RenderedCommand {
  const user = spec.buildservice && !spec.cmd.startsWith('launcher ') ? `launcher ${spec.cmd}` : spec.cmd;
  const stdout = spec.filelog_stdout ?? null;
  const stderr = spec.filelog_stderr ?? null;
  if (stdout === null && stderr === null && spec.buildservice) {
    try {
      return ok(shlexSplit(user));
    } catch (e) {
      return problem('', `cannot be split into arguments: ${(e as Error).message}`);
    }
  }
  let line = '';
  if (stdout !== null) line += `${STDOUT_PREFIX}${stdout};`;
  if (stderr !== null) line += `${STDERR_PREFIX}${stderr};`;
  return ok([...COMMAND_WRAPPER, `${line}${user}`]);
}

/** jobs-api strips the launcher prefix it adds to buildservice commands: `split(" ", 1)[-1]`. */
export function stripLauncher(cmd: string): string {
  if (!cmd.startsWith('launcher ')) return cmd;
  return cmd.slice('launcher '.length);
}
