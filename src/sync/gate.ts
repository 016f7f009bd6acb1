import { phaseBehaviour } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { PhaseView } from '../phase/source.js';
import type { RuntimeEntry } from './reconcile.js';

/** What decides whether this replica may write a CR now. */
export interface WriterState {
  /** The phase in force; undefined until the phase ConfigMap has been read. */
  phase: Phase | undefined;
  /** This replica holds the Lease (or writes alone: the one-shot import). */
  lease: boolean;
  /** Never write, only report (`report`, `import --dry-run`). */
  readOnly: boolean;
  /** Every CR informer has listed once: a workload without a CR in the inventory is then a backfill candidate. */
  crsListed: boolean;
  /** The CRs are watched (the daemon); false: listed once and never watched (the one-shot import). */
  crsWatched: boolean;
}

/** Why a write is refused: by this replica's standing, or because the job was deleted. */
export type WriteVerdict = 'write' | 'not-the-writer' | 'tombstoned';

/**
 * May a write happen now: the phase is known and backfills runtime-only jobs, this replica holds the Lease, is not
 * read-only, and every CR has been listed; for one job (`tombstoned` given), its CR was also not seen deleted while
 * its workload stood. Standing is checked first: a replica that may not write never says why a job is refused.
 */
export function writeVerdict(s: WriterState, tombstoned?: boolean): WriteVerdict {
  const backfills = s.phase !== undefined && phaseBehaviour(s.phase).backfillRuntimeOnly;
  if (!backfills || !s.lease || s.readOnly || !s.crsListed) return 'not-the-writer';
  return tombstoned ? 'tombstoned' : 'write';
}

/**
 * May the sync keep the job of a backfill candidate it just read (a workload without a CR in the inventory), to
 * write its CR later without reading it again. Keeping is not writing: an unknown phase keeps (the phase may be read
 * after the workloads; the write checks it), and so does a replica without the Lease (it may take the Lease). Until
 * every CR is listed, a workload without a CR in the inventory may well have one: the daemon keeps nothing then (the
 * first pass reads a candidate once instead). The import, which never watches CRs, keeps from its first workload
 * page on, whichever list ends first: it is there to write them, and the pass drops what it kept for jobs whose CR
 * the list showed.
 */
export function keepVerdict(s: WriterState): boolean {
  if (s.readOnly) return false;
  if (s.phase !== undefined && !phaseBehaviour(s.phase).backfillRuntimeOnly) return false;
  return s.crsListed || !s.crsWatched;
}

/** The tombstones the gate reads (sync/tombstones). */
export interface TombstoneView {
  /** Whether `r` (a workload as read now) is the workload of a job whose CR was seen deleted. */
  covers: (r: RuntimeEntry<unknown>) => boolean;
}

/**
 * The one place that says whether this replica may write: every check before a write, and the race guard right
 * before each POST, ask it. It reads the phase live (a pass decides on the phase it read; a write much later asks
 * again) and holds what the sync tells it: the Lease won or lost, the CRs listed.
 */
export class WriterGate {
  private lease: boolean;
  private listed = false;

  constructor(
    private readonly o: {
      phase: Pick<PhaseView, 'known' | 'current'>;
      /** false: this replica writes alone (no Lease campaign). Default true. */
      elect?: boolean;
      readOnly?: boolean;
      /** false: the CRs are listed once, never watched (the import). Default true. */
      crsWatched?: boolean;
      tombstones?: TombstoneView;
    },
  ) {
    this.lease = !(o.elect ?? true);
  }

  /** This replica won (true) or lost the Lease. */
  leading(yes: boolean): void {
    this.lease = yes;
  }

  /** Every CR informer has listed once. */
  crsListed(): void {
    this.listed = true;
  }

  get leader(): boolean {
    return this.lease;
  }

  state(): WriterState {
    const { phase } = this.o;
    return {
      phase: phase.known() ? phase.current() : undefined,
      lease: this.lease,
      readOnly: this.o.readOnly ?? false,
      crsListed: this.listed,
      crsWatched: this.o.crsWatched ?? true,
    };
  }

  /** Whether a candidate's job read from the watch may be kept (see keepVerdict). */
  mayKeep(): boolean {
    return keepVerdict(this.state());
  }

  /** Whether this replica may write now; with `job` (its workload as read now), whether it may write that job's CR. */
  mayWrite(job?: RuntimeEntry<unknown>): boolean {
    return this.verdict(job) === 'write';
  }

  verdict(job?: RuntimeEntry<unknown>): WriteVerdict {
    const state = this.state();
    const standing = writeVerdict(state);
    // The tombstones are read only for a replica that may write: the cheap checks first.
    if (standing !== 'write' || job === undefined) return standing;
    return writeVerdict(state, this.o.tombstones?.covers(job) ?? false);
  }
}
