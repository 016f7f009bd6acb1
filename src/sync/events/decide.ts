import { createHash } from 'node:crypto';
import { phaseBehaviour } from '../../phase/behaviour.js';
import { atDeadline } from '../../rollout/phases.js';
import type { Phase } from '../../rollout/phases.js';
import { workloadKindOf } from '../../runtime/kinds.js';
import { jobKey } from '../per-tool.js';
import type { ToolInventory, WorkloadRef } from '../reconcile.js';
import { jobsRunCommand } from '../../jobs/commands.js';

/**
 * Which workloads deserve an Event now, and what it says: pure, over one tool's inventory and what was written of
 * each series so far. The recorder (events/recorder) writes what this decides; the emitter (events/emitter) keeps
 * the series between passes.
 */

/**
 * - `JobNotManaged`: a jobs-framework workload (CronJob, Deployment) with no job CR, in a phase where jobs-api no
 *   longer lists such jobs (`ignore-unmanaged`, `enforce`).
 * - `WrittenOutsideJobsApi`: a CronJob or Deployment without jobs-framework labels (written by hand), in any phase.
 */
export type EventReason = 'JobNotManaged' | 'WrittenOutsideJobsApi';

export const EVENT_REASONS: readonly EventReason[] = ['JobNotManaged', 'WrittenOutsideJobsApi'];

/** A workload an Event is written on. */
export interface EventSubject {
  tool: string;
  reason: EventReason;
  workload: Pick<WorkloadRef, 'kind' | 'namespace' | 'name' | 'uid'>;
}

/** What was written of one Event series. */
export interface SeriesState {
  /** Occurrences on record: 1 once created, 2 and up once the series was observed again; 0 before any write. */
  count: number;
  /** When the last write ended (ms), successful or not; for a write in flight, when it was queued. */
  at: number;
  /** A write is queued or in flight. */
  pending: boolean;
  /** The last write failed: it is tried again `retrySeconds` after `at`. */
  failed: boolean;
}

/** What an Event's note names besides the workload. */
export interface EventTexts {
  /** The migration deadline (YYYY-MM-DD), or '' when none is set. */
  deadline: string;
  migrationUrl: string;
}

/** The writer an Event names. */
export interface Reporting {
  /** A qualified name, the same for every replica. */
  controller: string;
  /** This replica (the pod name). */
  instance: string;
}

/** An `events.k8s.io/v1` Event, as written. */
export interface EventObject {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: EventReason;
  regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid: string };
  note: string;
  type: 'Warning';
  series?: { count: number; lastObservedTime: string };
}

/**
 * One write: create a series, or observe it again (`series.count` becomes `count`). A repeat carries the whole
 * Event too, to create it afresh when the API server has let the old one expire.
 */
export type EventWrite =
  | { op: 'create'; key: string; tool: string; event: EventObject }
  | { op: 'repeat'; key: string; tool: string; event: EventObject; count: number; observedAt: string };

export interface DecideOptions {
  phase: Phase;
  now: number;
  /** A series is observed again this long after its last write. */
  repeatSeconds: number;
  /** A failed write is tried again this long after it failed. */
  retrySeconds: number;
  texts: EventTexts;
  reporting: Reporting;
}

export const REPORTING_CONTROLLER = 'jobs-storage.toolforge.org/sync';
/** The action the sync took on the object: it took stock of it (its reconcile). */
export const EVENT_ACTION = 'Reconcile';
/** The API server refuses a longer note (events.k8s.io/v1 `note`: at most 1 kB). */
export const MAX_NOTE_BYTES = 1024;
/** Labels on every Event the sync writes, so that admins can list them (`kubectl get events -A -l ...`). */
export const EVENT_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/managed-by': 'jobs-storage' };

/**
 * The tool's workloads that deserve an Event in `phase`, and when one that does not yet will (a jobs-framework job
 * without a CR is given the backfill grace period, from the later of its creation and when the sync first saw it
 * without a CR: jobs-api writes the CR first and deletes it first, so such a job may be jobs-api's own in flight).
 * Workloads being deleted get none.
 */
export function eventSubjects(
  inv: ToolInventory,
  o: { phase: Phase; now: number; graceSeconds: number },
): { subjects: EventSubject[]; nextDueAt?: number } {
  const subjects: EventSubject[] = [];
  let nextDueAt: number | undefined;
  if (!phaseBehaviour(o.phase).listsRuntimeOnlyJobs) {
    const stored = new Set(inv.storage.map(jobKey));
    for (const r of inv.runtime) {
      if (stored.has(jobKey(r)) || r.workload.deleting) continue;
      const dueAt = Math.max(r.workload.createdAt, r.unmatchedSince ?? o.now) + o.graceSeconds * 1000;
      if (o.now < dueAt) nextDueAt = Math.min(nextDueAt ?? dueAt, dueAt);
      else subjects.push({ tool: inv.tool, reason: 'JobNotManaged', workload: r.workload });
    }
  }
  for (const w of inv.foreignWorkloads ?? []) {
    if (!w.deleting) subjects.push({ tool: inv.tool, reason: 'WrittenOutsideJobsApi', workload: w });
  }
  return nextDueAt === undefined ? { subjects } : { subjects, nextDueAt };
}

/**
 * The Event series name of a subject in a phase: the object's name (for people) and a hash of its uid, the reason and
 * the phase. One series per object and reason; a phase switch starts a new one, because an Event's note cannot
 * change and the note says what the phase means. An object deleted and created again (a new uid) gets a new one.
 */
export function seriesName(s: EventSubject, phase: Phase): string {
  const hash = createHash('sha256').update(`${s.workload.uid}/${s.reason}/${phase}`).digest('hex').slice(0, 16);
  // An object name is a DNS subdomain (at most 253): cut it so that `<name>.<hash>` is one too.
  const name = s.workload.name.slice(0, 253 - hash.length - 1).replace(/[.-]+$/, '');
  return `${name}.${hash}`;
}

/** What the maintainer reads: what was found, what happens at the deadline in this phase, what to do, where to read. */
export function eventNote(s: EventSubject, phase: Phase, texts: EventTexts): string {
  const { kind, name } = s.workload;
  const found =
    s.reason === 'JobNotManaged'
      ? `${kind} "${name}" carries Toolforge jobs framework labels, but the jobs API has no record of it.`
      : `${kind} "${name}" was written directly (kubectl or a script), not through the Toolforge jobs API.`;
  const todo = (job: string) =>
    s.reason === 'JobNotManaged'
      ? `To manage it with 'toolforge jobs' again, put it in a jobs.yaml and run 'toolforge jobs load jobs.yaml' ` +
        `(the jobs API replaces this ${kind} with its own).`
      : `To move it, create it with '${jobsRunCommand(workloadKindOf(kind)?.jobType, job)}' (or an entry in jobs.yaml and ` +
        `'toolforge jobs load jobs.yaml'), then 'kubectl delete ${kind.toLowerCase()} ${job}'.`;
  const note = (job: string) => `${found} ${atDeadline(phase, texts.deadline)} ${todo(job)} How: ${texts.migrationUrl}`;
  const full = note(name);
  // A long name is written once, in the first sentence: the commands say `<name>`.
  return fitNote(Buffer.byteLength(full) <= MAX_NOTE_BYTES ? full : note('<name>'));
}

/** The note cut to what the API server accepts, should a long name and URL still not fit. */
function fitNote(note: string): string {
  if (Buffer.byteLength(note) <= MAX_NOTE_BYTES) return note;
  const ellipsis = '…';
  let cut = note.slice(0, MAX_NOTE_BYTES - Buffer.byteLength(ellipsis));
  while (Buffer.byteLength(cut) > MAX_NOTE_BYTES - Buffer.byteLength(ellipsis)) cut = cut.slice(0, -1);
  return `${cut}${ellipsis}`;
}

/** A MicroTime (RFC 3339 with exactly six fractional digits, which the API server requires). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** The Event a subject's series starts with. */
export function eventObject(
  s: EventSubject,
  o: Pick<DecideOptions, 'phase' | 'now' | 'texts' | 'reporting'>,
): EventObject {
  const w = s.workload;
  const kind = workloadKindOf(w.kind);
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: seriesName(s, o.phase), namespace: w.namespace, labels: { ...EVENT_LABELS } },
    eventTime: microTime(o.now),
    reportingController: o.reporting.controller,
    reportingInstance: o.reporting.instance.slice(0, 128),
    action: EVENT_ACTION,
    reason: s.reason,
    regarding: {
      apiVersion: kind ? `${kind.group}/${kind.version}` : '',
      kind: w.kind,
      name: w.name,
      namespace: w.namespace,
      uid: w.uid,
    },
    note: eventNote(s, o.phase, o.texts),
    type: 'Warning',
  };
}

/**
 * The writes due now for a tool's subjects, given what was written of each series (`series`, by series name): a
 * series never written is created; one written `repeatSeconds` ago or more is observed again; a failed write is
 * tried again after `retrySeconds`; one in flight waits. A write handed over now, or in flight, makes the tool due
 * again after `retrySeconds` (its outcome is not known yet). Also the names of the subjects' series (the caller forgets
 * the others: objects gone, or a phase switch) and when the next write of these subjects falls due.
 */
export function decideEvents(
  subjects: readonly EventSubject[],
  series: ReadonlyMap<string, SeriesState>,
  o: DecideOptions,
): { writes: EventWrite[]; live: Set<string>; nextDueAt?: number } {
  const writes: EventWrite[] = [];
  const live = new Set<string>();
  let nextDueAt: number | undefined;
  const due = (at: number) => (nextDueAt = Math.min(nextDueAt ?? at, at));
  for (const s of subjects) {
    const key = seriesName(s, o.phase);
    live.add(key);
    const state = series.get(key);
    if (state?.pending) {
      // Its end sets the time of the next write; a failure is retried after retrySeconds: look again by then.
      due(o.now + o.retrySeconds * 1000);
      continue;
    }
    const wait = state === undefined ? 0 : (state.failed ? o.retrySeconds : o.repeatSeconds) * 1000;
    if (state !== undefined && o.now < state.at + wait) {
      due(state.at + wait);
      continue;
    }
    // Should this write fail or be dropped, it is tried again after retrySeconds: look again by then (a success
    // moves the next write to the repeat).
    due(o.now + o.retrySeconds * 1000);
    const event = eventObject(s, o);
    if (state === undefined || state.count === 0) writes.push({ op: 'create', key, tool: s.tool, event });
    else writes.push({ op: 'repeat', key, tool: s.tool, event, count: state.count + 1, observedAt: microTime(o.now) });
  }
  return nextDueAt === undefined ? { writes, live } : { writes, live, nextDueAt };
}
