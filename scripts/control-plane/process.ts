import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not allocate a port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

export interface Daemon {
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal) once the child exits; only meaningful for children of this process. */
  exited: Promise<string>;
}

/**
 * Starts a process in its own process group with output appended to logFile. Its own group lets teardown signal
 * everything it forked with one kill(-pgid), and keeps a terminal Ctrl-C from reaching it before our handlers run.
 */
export function spawnDaemon(command: string, args: string[], logFile: string): Daemon {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`failed to start ${command}`);
    const exited = new Promise<string>((resolve) => {
      child.on('exit', (code, signal) => resolve(signal ?? String(code)));
      child.on('error', (err) => resolve(err.message));
    });
    // Never keeps node alive: a test file that forgets stop() must still exit, and the exit handler then kills it.
    child.unref();
    return { pid: child.pid, logFile, exited };
  } finally {
    closeSync(fd);
  }
}

// A zombie still answers kill(pid, 0); when the parent that started it has gone, nothing may ever reap it.
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** Guards against pid reuse when the pid comes from a state file written by an earlier process. */
export function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
  } catch {
    return undefined;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function stopGroup(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) break;
    await sleep(50);
  }
  signalGroup(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2_000;
  while (isAlive(pid) && Date.now() < killDeadline) await sleep(20);
}

export function killGroupSync(pid: number): void {
  signalGroup(pid, 'SIGKILL');
}

export function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

type Cleanup = () => void;
const cleanups = new Set<Cleanup>();
let handlersInstalled = false;

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort while exiting
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', runCleanups);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      runCleanups();
      // Another listener (e.g. a demo server's graceful shutdown) owns the exit; otherwise keep the default behaviour.
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}

/** Registers a synchronous cleanup run on process exit or on SIGINT/SIGTERM/SIGHUP; returns its unregister. */
export function onExit(fn: Cleanup): () => void {
  installHandlers();
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

export function removeDirSync(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
