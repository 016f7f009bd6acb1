import { readFileSync, statSync } from 'node:fs';
import { ConfigError, errorMessage } from '../errors.js';
import type { PrebuiltImage } from '../jobs/index.js';
import { prebuiltImagesFromImageConfig } from './image-config.js';

/** The logger methods used (a pino Logger is one; runtime/ sits below log/ on the floor plan). */
export interface ReloadLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface FollowOptions {
  /**
   * Least time between two looks at the file, in ms (0: at every use). The table is read per workload, thousands
   * of times a pass; kubelet takes up to a minute to swap a ConfigMap in, so a second's delay costs nothing.
   */
  recheckMs?: number;
  /** Monotonic clock in ms (tests pass their own). */
  now?: () => number;
  /** Told when a changed file is loaded, and when one cannot be (the last good table stays in use). */
  logger?: ReloadLogger;
}

const DEFAULT_RECHECK_MS = 1000;
const MISSING = 'missing';

/** What identifies one version of the file: kubelet's symlink swap gives a new inode, an edit a new mtime or size. */
function stampOf(file: string): string {
  const st = statSync(file);
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function readTable(file: string): PrebuiltImage[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`runtime.imageConfigFile: cannot read ${file}: ${errorMessage(err)}`], { cause: err });
  }
  const parsed = prebuiltImagesFromImageConfig(text);
  if (!parsed.ok) {
    throw new ConfigError([`runtime.imageConfigFile: ${parsed.problem.path} ${parsed.problem.message}`.trim()]);
  }
  return parsed.value;
}

/**
 * The image table of `runtime.imageConfigFile`, following the file: a ConfigMap volume is updated by kubelet
 * swapping a symlink to a new directory, so the file is stat'ed (through the symlinks) at most every `recheckMs` when
 * the table is used, and read again when its inode, size or times changed. No watcher, no timer: nothing to start or
 * stop, and a one-shot command pays one stat. A changed file that cannot be read or is not a valid image config
 * leaves the last good table in use and is logged once per version.
 */
export class FollowedImageConfig {
  private table: readonly PrebuiltImage[];
  private stamp: string;
  private checkedAt: number;
  private readonly recheckMs: number;
  private readonly now: () => number;

  /** Reads the file once; a file that cannot be read or parsed is a configuration error, as at startup. */
  constructor(
    readonly file: string,
    private readonly options: FollowOptions = {},
  ) {
    this.recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.now = options.now ?? (() => performance.now());
    try {
      this.stamp = stampOf(file);
    } catch (err) {
      throw new ConfigError([`runtime.imageConfigFile: cannot read ${file}: ${errorMessage(err)}`], { cause: err });
    }
    this.table = readTable(file);
    this.checkedAt = this.now();
  }

  /** The table as of the file's latest good version. */
  images(): readonly PrebuiltImage[] {
    const now = this.now();
    if (now - this.checkedAt < this.recheckMs) return this.table;
    this.checkedAt = now;
    let stamp: string;
    try {
      stamp = stampOf(this.file);
    } catch (err) {
      if (this.stamp !== MISSING) this.fail(MISSING, err);
      return this.table;
    }
    if (stamp === this.stamp) return this.table;
    try {
      this.table = readTable(this.file);
    } catch (err) {
      this.fail(stamp, err);
      return this.table;
    }
    this.stamp = stamp;
    this.options.logger?.info({ file: this.file, images: this.table.length }, 'image config reloaded');
    return this.table;
  }

  /** Remembers the bad version, so it is reported once. */
  private fail(stamp: string, err: unknown): void {
    this.stamp = stamp;
    this.options.logger?.warn(
      { file: this.file, err: errorMessage(err), images: this.table.length },
      'image config unreadable, keeping the last good table',
    );
  }
}
