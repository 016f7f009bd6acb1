import { join as shlexJoin } from 'shlex';
import { COMMAND_WRAPPER } from '../runtime/command.js';

/**
 * A container command as it runs: the user's command, and where its stdout and stderr go. Every layout jobs-api
 * has written is read here (see runtime/command.ts); this only describes a command, it never fails.
 */
export interface CommandParts {
  /** `exec`: "exec 1>>OUT;exec 2>>ERR;cmd"; `trailing`: "cmd 1>>OUT 2>>ERR"; `shell`: "cmd" in /bin/sh; `direct`: no shell. */
  form: 'exec' | 'trailing' | 'shell' | 'direct';
  /** The user's command. */
  cmd: string;
  /** The file stdout is appended to (relative paths resolved against the working directory), or null: the pod log. */
  stdout: string | null;
  stderr: string | null;
}

const EXEC_REDIRECT = /^exec ([12])>>?([^;]*);/;
const TRAILING_REDIRECTS = /^([\s\S]*?) 1>>?(\S+)(?: 2>>?(\S+))?$/;

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function resolvePath(path: string, workingDir: unknown): string {
  if (path.startsWith('/') || typeof workingDir !== 'string' || workingDir === '') return path;
  return `${workingDir.replace(/\/+$/, '')}/${path.replace(/^\.\//, '')}`;
}

function isWrapped(command: readonly string[]): boolean {
  return command.length === COMMAND_WRAPPER.length + 1 && COMMAND_WRAPPER.every((part, i) => command[i] === part);
}

/** The script of `/bin/sh -c [--] SCRIPT` with no args, or undefined for a command that runs without a shell. */
function shellScript(command: readonly string[], args: readonly string[]): string | undefined {
  if (args.length > 0) return undefined;
  const plain = command.length === 3 && command[0] === '/bin/sh' && command[1] === '-c';
  return isWrapped(command) || plain ? command.at(-1) : undefined;
}

export function commandParts(command: unknown, args: unknown, workingDir: unknown): CommandParts {
  const cmd = strings(command);
  const rest = strings(args);
  const script = shellScript(cmd, rest);
  if (script === undefined) return { form: 'direct', cmd: shlexJoin([...cmd, ...rest]), stdout: null, stderr: null };
  let body = script;
  const files: Record<string, string> = {};
  for (let m = EXEC_REDIRECT.exec(body); m !== null; m = EXEC_REDIRECT.exec(body)) {
    files[m[1] ?? ''] = resolvePath(m[2] ?? '', workingDir);
    body = body.slice(m[0].length);
  }
  if (body !== script) return { form: 'exec', cmd: body, stdout: files['1'] ?? null, stderr: files['2'] ?? null };
  const trailing = TRAILING_REDIRECTS.exec(script);
  if (trailing === null) return { form: 'shell', cmd: script, stdout: null, stderr: null };
  return {
    form: 'trailing',
    cmd: trailing[1] ?? '',
    stdout: resolvePath(trailing[2] ?? '', workingDir),
    stderr: trailing[3] === undefined ? null : resolvePath(trailing[3], workingDir),
  };
}

/** How a log destination reads in a reason. */
export function describeLog(file: string | null): string {
  return file === null ? 'the job log (toolforge jobs logs)' : file === '/dev/null' ? '/dev/null (discarded)' : file;
}
