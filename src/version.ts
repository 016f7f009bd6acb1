import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: one level above both src/ and dist/. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The package version, read once from package.json (one level above both src/ and dist/). */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** What `jobs-storage version` reports. */
export interface BuildInfo {
  version: string;
  /** The Node.js version running the CLI (`process.version`). */
  node: string;
  /** The commit the code was built from, when known (a source checkout's `.git`). */
  gitCommit?: string;
}

/**
 * The commit a source checkout is at: `.git/HEAD`, followed through one symbolic ref (a loose ref file, else
 * `packed-refs`). Undefined when there is no checkout (an image holds dist/ only) or it cannot be read.
 */
export function gitCommitOf(root: string): string | undefined {
  const git = join(root, '.git');
  try {
    if (!existsSync(join(git, 'HEAD'))) return undefined;
    const head = readFileSync(join(git, 'HEAD'), 'utf8').trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (ref === undefined) return /^[0-9a-f]{40}$/.test(head) ? head : undefined;
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), 'utf8').trim();
    const packed = readFileSync(join(git, 'packed-refs'), 'utf8');
    return packed
      .split('\n')
      .map((line) => line.split(' '))
      .find(([, name]) => name === ref)?.[0];
  } catch {
    return undefined;
  }
}

/** The version, the Node.js version and (when known) the git commit. */
export function buildInfo(root: string = ROOT): BuildInfo {
  const gitCommit = gitCommitOf(root);
  return { version: VERSION, node: process.version, ...(gitCommit === undefined ? {} : { gitCommit }) };
}
