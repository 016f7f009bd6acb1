import { formatProblem } from '../errors.js';
import { formatCpu, formatMemory, toolHome } from '../jobs/index.js';
import { classifiedDifferences, type ClassifiedDifference } from '../preflight/diff.js';
import { describeLog } from '../preflight/command-parts.js';
import { renderJobWorkloads } from '../runtime/render.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { isBuildserviceImageName, jobFromLoadEntry, type LoadEntry } from './load-file.js';

/** What `migrate` tells the maintainers about one job, beside its entry. */
export interface MigrationNote {
  code: string;
  /** The workload field (hand-written objects) or load key (jobs-framework objects) the note is about. */
  where: string;
  message: string;
  /** What to do instead, where there is something to do. */
  instead?: string;
  attention: boolean;
}

/**
 * What changes when jobs-api runs an entry: the entry rendered as jobs-api renders it, compared with the running
 * workload through preflight's diff and classifier (one voice for both commands). Differences the entry can undo
 * are undone in the entry (the NFS mounts, the log files) and said; every other functional difference becomes a
 * note with what to do. Differences another note of the job already names are not repeated.
 */

export interface BehaviourInput {
  entry: LoadEntry;
  tool: string;
  /** The running objects of the job: its workload, and for a continuous job the Service of the same name. */
  live: readonly unknown[];
  settings: RuntimeSettings;
  /** The tool's uid, as the tool's pods carry it (the render's security context); unknown: none. */
  toolUid?: number;
  /** The codes of the notes the job has already: a difference they name is not listed again. */
  noted: ReadonlySet<string>;
}

export interface BehaviourResult {
  /** The entry, amended where a difference can be undone in it. */
  entry: LoadEntry;
  notes: MigrationNote[];
}

/** The rules whose differences are one note: a job's requests and limits rise or fall together. */
const RESOURCE_RULES = new Set(['cpu-request', 'cpu-limit', 'memory-request', 'memory-limit', 'resources']);

/** Notes of the entry (migrate/entry) and of the hand-written reader (migrate/foreign*) that name a rule's change. */
const NOTED_BY: Readonly<Record<string, readonly string[]>> = {
  image: ['image-variant', 'unknown-image', 'non-toolforge-image'],
  'mount-storage': ['mount-made-explicit'],
  command: ['launcher-added', 'working-dir', 'shell-args', 'no-command'],
  'working-dir': ['working-dir'],
  schedule: ['schedule-moves', 'schedule', 'schedule-as-fields'],
  concurrency: ['concurrency-policy'],
  'restart-policy': ['restart-policy'],
  retry: ['retry-capped'],
  'security-context': ['security-context'],
  'extra-container': ['several-containers', 'extra-containers'],
  probes: ['probe', 'probe-dropped'],
  env: ['env-vars'],
  volumes: ['custom-volume'],
  'volume-mounts': ['custom-volume'],
  timeout: ['timeout-one-off'],
};

/** For a field no rule names: the reader's note on the same pod or container setting. */
function notedUnknown(canonical: string): readonly string[] {
  if (/^pod\.spec\.initContainers/.test(canonical)) return ['init-containers'];
  if (/^pod\.spec\.(?:nodeSelector|affinity|tolerations)/.test(canonical)) return ['node-placement'];
  if (canonical.startsWith('pod.spec.')) return ['pod-setting'];
  if (canonical.startsWith('container.')) return ['container-setting'];
  return [];
}

function isNoted(d: ClassifiedDifference, noted: ReadonlySet<string>): boolean {
  const codes = d.rule === 'unknown' ? notedUnknown(d.canonical) : (NOTED_BY[d.rule] ?? []);
  return codes.some((c) => noted.has(c));
}

function render(entry: LoadEntry, input: BehaviourInput): ClassifiedDifference[] | string {
  const job = jobFromLoadEntry(entry, input.tool);
  const rendered = renderJobWorkloads(
    job,
    input.settings,
    input.toolUid === undefined ? {} : { toolUid: input.toolUid },
  );
  if (!rendered.ok) return formatProblem(rendered.problem);
  return classifiedDifferences(input.live, rendered.value).filter((d) => d.class === 'functional');
}

/** A log file as a load entry names it: relative to the tool's home when under it. */
function entryPath(file: string, home: string): string {
  return file.startsWith(`${home}/`) ? file.slice(home.length + 1) : file;
}

const STREAM_KEY = { stdout: 'filelog-stdout', stderr: 'filelog-stderr' } as const;

/** Log files need filelog on, and filelog needs the NFS mounts: a build service entry says both. */
function turnOnFilelog(entry: LoadEntry): void {
  delete entry['no-filelog'];
  if (isBuildserviceImageName(entry.image)) {
    if (entry.filelog !== true) entry.filelog = true;
    entry.mount = 'all';
  }
}

/**
 * Whether a stream's live destination can be written as the entry's log file: an absolute file (not /dev/null, which
 * the job log replaces; see the note), and a command that does not redirect it itself (then the entry runs the same
 * redirect, and a log file key would add a second one).
 */
function keepsFile(live: unknown, entry: LoadEntry): live is string {
  return typeof live === 'string' && live.startsWith('/') && live !== '/dev/null' && !/\s[12]?>/.test(entry.command);
}

/**
 * Undoes in the entry what it can: a workload given every NFS mount keeps them (`mount: all`), a log file keeps
 * its file (`filelog-stdout`/`filelog-stderr`). Returns the notes that say so.
 */
function amend(entry: LoadEntry, differences: readonly ClassifiedDifference[], home: string): MigrationNote[] {
  const notes: MigrationNote[] = [];
  for (const d of differences) {
    if (d.rule === 'mount-storage' && d.rendered === 'none' && entry.mount !== 'all') {
      entry.mount = 'all';
      const label =
        typeof d.live === 'string' ? `its mount-storage label says '${d.live}'` : 'it has no mount-storage label';
      notes.push({
        code: 'mount-made-explicit',
        where: 'mount',
        message: `written as 'mount: all': ${label}, so its pods get every NFS mount (the tool's home, /data/project, …); jobs-api runs a build service image without them unless the entry says 'mount: all'`,
        attention: false,
      });
    }
    if ((d.rule === 'stdout' || d.rule === 'stderr') && keepsFile(d.live, entry)) {
      const key = STREAM_KEY[d.rule];
      const path = entryPath(d.live, home);
      if (entry[key] === path) continue;
      entry[key] = path;
      turnOnFilelog(entry);
      notes.push({
        code: `${d.rule}-kept`,
        where: key,
        message: `written as '${key}: ${path}': this job writes its ${d.rule} to ${d.live}; jobs-api would write it to ${describeLog(typeof d.rendered === 'string' ? d.rendered : null)}`,
        attention: false,
      });
    }
  }
  return notes;
}

function figures(differences: readonly ClassifiedDifference[], group: 'requests' | 'limits'): string {
  const parts: string[] = [];
  for (const res of ['cpu', 'memory'] as const) {
    const d = differences.find((x) => x.canonical === `container.resources.${group}.${res}`);
    if (typeof d?.rendered === 'string') parts.push(`${res} ${d.rendered}`);
  }
  return parts.join(', ');
}

function resourcesInstead(differences: readonly ClassifiedDifference[], entry: LoadEntry): string {
  const requests = figures(differences, 'requests');
  const limits = figures(differences, 'limits');
  const now = [requests && `requests ${requests}`, limits && `limits ${limits}`].filter(Boolean).join('; ');
  const cpu = formatCpu(String(entry.cpu ?? '')) ?? entry.cpu;
  const mem = entry.mem === undefined ? undefined : (formatMemory(entry.mem) ?? entry.mem);
  const given = [cpu === undefined ? '' : `cpu: ${String(cpu)}`, mem === undefined ? '' : `mem: ${mem}`]
    .filter(Boolean)
    .join(', ');
  return `nothing, unless the tool's quota is tight: the job will reserve ${now}${given ? ` (from '${given}')` : " (jobs-api's defaults)"}; jobs-api requests what the entry's 'cpu' and 'mem' give as the limit, so write lower values to reserve less`;
}

function logInstead(d: ClassifiedDifference, entry: LoadEntry): string {
  const key = STREAM_KEY[d.rule === 'stderr' ? 'stderr' : 'stdout'];
  if (d.live === '/dev/null' && d.rendered === null)
    return `nothing: the output is kept in the job log ('toolforge jobs logs ${entry.name}'); to discard it as before, add 'filelog: true' and '${key}: /dev/null'`;
  if (d.live === null) return `to keep it in the job log ('toolforge jobs logs ${entry.name}'), add 'no-filelog: true'`;
  return `set '${key}' to the file the job should write`;
}

function envInstead(differences: readonly ClassifiedDifference[]): string {
  const removed = differences.filter((d) => d.rendered === undefined).map((d) => d.canonical.replace(/^.*\[|\]$/g, ''));
  if (removed.length === 0) return 'nothing: jobs-api sets it itself';
  return `create what the job needs once for the tool: ${removed.map((n) => `'toolforge envvars create ${n}'`).join(', ')} (every job of the tool gets them; HOME is set by the image)`;
}

type Advice = (differences: readonly ClassifiedDifference[], input: BehaviourInput) => string | undefined;

const NFS_BY_LABEL = "nothing for the tool's NFS directories: volume-admission mounts them by the job's mount label";

/** What to do about one rule's differences (by rule; `resources` for the four quantities). */
const ADVICE: Readonly<Record<string, Advice>> = {
  resources: (ds, input) => resourcesInstead(ds, input.entry),
  stdout: (ds, input) => (ds[0] === undefined ? undefined : logInstead(ds[0], input.entry)),
  stderr: (ds, input) => (ds[0] === undefined ? undefined : logInstead(ds[0], input.entry)),
  image: () =>
    "nothing: jobs-api runs this variant for every job on the image named in 'image' (the same language and libraries); pick another 'image' if the job needs another one",
  'working-dir': (_, input) =>
    `relative paths in the command start from ${toolHome(input.tool, input.settings)}; if the command relies on another directory, start it with 'cd DIR && '`,
  command: () =>
    "nothing, unless the command relies on how it was started (no shell, or redirects that applied to its last part only): check its output after loading with 'toolforge jobs logs'",
  'mount-storage': () => "write 'mount: all' if the job reads or writes the tool's files",
  'security-context': () =>
    "nothing: the job runs as the tool's user without extra privileges, as Toolforge's pod policy already requires of the tool's pods",
  'grace-period': () => 'nothing, unless the job needs longer than that to shut down cleanly',
  'starting-deadline': () => 'nothing: a run that cannot start within 30 s of its time is skipped until the next one',
  strategy: () =>
    "nothing, unless the job must keep running during a restart: with one replica jobs-api stops the old pod before starting the new one; write 'replicas: 2' to roll over instead",
  env: (ds) => envInstead(ds),
  volumes: () => NFS_BY_LABEL,
  'volume-mounts': () => NFS_BY_LABEL,
  object: (ds, input) =>
    ds[0]?.live === undefined
      ? `nothing, unless the tool has its own Service named '${input.entry.name}': delete that one before loading`
      : undefined,
  probes: () =>
    "nothing, unless the job needs longer to start or answer: jobs-api's health check runs with its own timings; write 'health-check-script' or 'health-check-http' for another check",
  retry: () => "write the retries the job needs in 'retry' (at most 5)",
  schedule: () => "nothing, unless the exact time matters: then write the five fields in 'schedule'",
  timeout: () =>
    "for a scheduled job write it in 'timeout'; a one-off job has none: put 'timeout N' in front of the command",
};

/** The canonical path a group of differences is listed under. */
function whereOf(group: string, differences: readonly ClassifiedDifference[]): string {
  if (group === 'resources') return 'container.resources';
  if (group === 'security-context') return 'securityContext';
  return differences[0]?.canonical ?? '';
}

/** The order notes are listed in: where the output goes and what runs first, the bookkeeping last; others after. */
const NOTE_ORDER: readonly string[] = [
  'stdout',
  'stderr',
  'mount-storage',
  'volumes',
  'volume-mounts',
  'command',
  'working-dir',
  'image',
  'env',
  'resources',
  'schedule',
  'timeout',
  'retry',
  'concurrency',
  'probes',
  'object',
  'strategy',
  'restart-policy',
  'grace-period',
  'starting-deadline',
  'security-context',
];

function rank(group: string): number {
  const i = NOTE_ORDER.indexOf(group);
  return i < 0 ? NOTE_ORDER.length : i;
}

/** One note per rule (the four quantities as one), in NOTE_ORDER, then in the order the differences came. */
function differenceNotes(differences: readonly ClassifiedDifference[], input: BehaviourInput): MigrationNote[] {
  const groups = new Map<string, ClassifiedDifference[]>();
  for (const d of differences) {
    if (isNoted(d, input.noted)) continue;
    const group = RESOURCE_RULES.has(d.rule) ? 'resources' : d.rule;
    groups.set(group, [...(groups.get(group) ?? []), d]);
  }
  const ordered = [...groups].sort(([a], [b]) => rank(a) - rank(b));
  return ordered.map(([group, ds]) => {
    const todo = ADVICE[group]?.(ds, input);
    return {
      code: `runs-differently-${group}`,
      where: whereOf(group, ds),
      message: [...new Set(ds.map((d) => d.reason))].join('; '),
      ...(todo === undefined ? {} : { instead: todo }),
      attention: false,
    };
  });
}

/**
 * The entry as jobs-api would run it, against what runs now. The entry must be valid (`validateLoadEntry` without
 * errors). A render jobs-api would refuse is one note that needs attention.
 */
export function checkBehaviour(input: BehaviourInput): BehaviourResult {
  const entry: LoadEntry = { ...input.entry };
  const first = render(entry, input);
  if (typeof first === 'string')
    return {
      entry,
      notes: [
        {
          code: 'render-failed',
          where: '',
          message: `jobs-api cannot render this entry: ${first}`,
          instead: 'fix the entry, then load it',
          attention: true,
        },
      ],
    };
  const fixed = amend(entry, first, toolHome(input.tool, input.settings));
  const remaining = fixed.length === 0 ? first : render(entry, input);
  if (typeof remaining === 'string') throw new TypeError(`an amended entry no longer renders: ${remaining}`);
  return {
    entry,
    notes: [...fixed, ...differenceNotes(remaining, { ...input, entry })],
  };
}
