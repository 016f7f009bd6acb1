import {
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  formatCpu,
  formatCron,
  formatMemory,
  imageTypeOf,
  imageUrl,
  JOB_NAME_MAX_LENGTH,
  parseCron,
  resolveJob,
  toolHome,
  type Job,
} from '../jobs/index.js';
import type { ParseWarning, RuntimeSettings } from '../runtime/index.js';
import type { LoadEntry, LoadKey } from './load-file.js';

/**
 * A job → its `toolforge jobs load` entry, as `toolforge jobs dump` would write it for the same job: only values
 * that differ from what jobs-api would default to, image short names, the schedule text the user gave.
 */

export type EntryNoteCode =
  | 'unknown-image'
  | 'other-tool-image'
  | 'one-off'
  | 'name-too-long'
  | 'retry-capped'
  | 'timeout-cli'
  | 'schedule-moves'
  | 'schedule-as-fields'
  | 'launcher-added'
  | 'image-variant'
  | 'mount-made-explicit'
  | 'extra-containers'
  | 'probe-dropped';

export interface EntryNote {
  code: EntryNoteCode;
  /** The load key the note is about; '' for the whole job. */
  field: LoadKey | '';
  message: string;
  /** A person has to act before (or instead of) loading the entry. */
  attention: boolean;
  /** Loading the entry changes this field of the running job (said, so nobody is surprised). */
  changes: boolean;
}

export interface EntryResult {
  entry: LoadEntry;
  notes: EntryNote[];
}

function note(code: EntryNoteCode, field: LoadKey | '', message: string, flags: Partial<EntryNote> = {}): EntryNote {
  return { code, field, message, attention: flags.attention ?? false, changes: flags.changes ?? false };
}

/** The image as a load file names it: a prebuilt short name, `tool-<tool>/<name>:<tag>`, or the reference as is. */
function imageName(job: Job, resolved: Job, notes: EntryNote[]): string {
  const image = resolved.image;
  if (image.exists === false) {
    notes.push(
      note(
        'unknown-image',
        'image',
        `'${imageUrl(image)}' is not a Toolforge image: jobs-api refuses it ("No such image"). Pick a prebuilt image (toolforge jobs images) or build one (toolforge build start)`,
        { attention: true },
      ),
    );
    return imageUrl(image);
  }
  if (imageTypeOf(image) !== 'buildservice') return image.short_name;
  const path = image.path ?? image.short_name.replace(/[:@].*$/, '');
  const project = path.split('/')[0] ?? '';
  if (project !== `tool-${job.tool_name}`) {
    notes.push(
      note(
        'other-tool-image',
        'image',
        `'${path}' is a build service image of another project than tool-${job.tool_name}: check that jobs-api lets this tool run it`,
      ),
    );
  }
  return `${path}:${image.tag || 'latest'}${image.digest ? `@${image.digest}` : ''}`;
}

/** `schedule`: the text the user gave when it still gives the running time, else the five running fields. */
function scheduleOf(job: Job & { job_type: 'scheduled' }, notes: EntryNote[]): string {
  const text = job.schedule.text;
  const again = parseCron(text, job.tool_name, job.job_name);
  if (again.ok && formatCron(again.value) === formatCron(job.schedule)) return text;
  const fields = formatCron(job.schedule);
  notes.push(
    note(
      'schedule-as-fields',
      'schedule',
      `written as the running schedule '${fields}': the configured '${text}' gives another time for this job`,
    ),
  );
  return fields;
}

function logPath(path: string | null | undefined, home: string, fallback: string): string | undefined {
  if (path === null || path === undefined || path === `${home}/${fallback}`) return undefined;
  return path.startsWith(`${home}/`) ? path.slice(home.length + 1) : path;
}

function filelogKeys(resolved: Job, settings: RuntimeSettings, entry: LoadEntry): void {
  const buildservice = imageTypeOf(resolved.image) === 'buildservice';
  const filelog = resolved.filelog === true;
  if (filelog !== !buildservice) {
    if (filelog) entry.filelog = true;
    else entry['no-filelog'] = true;
  }
  if (resolved.mount !== undefined && resolved.mount !== (buildservice ? 'none' : 'all')) entry.mount = resolved.mount;
  if (!filelog) return;
  const home = toolHome(resolved.tool_name, settings);
  const stdout = logPath(resolved.filelog_stdout, home, `${resolved.job_name}.out`);
  const stderr = logPath(resolved.filelog_stderr, home, `${resolved.job_name}.err`);
  if (stdout !== undefined) entry['filelog-stdout'] = stdout;
  if (stderr !== undefined) entry['filelog-stderr'] = stderr;
}

function resourceKeys(resolved: Job, entry: LoadEntry): void {
  const memory = formatMemory(resolved.memory ?? DEFAULT_MEMORY);
  if (memory !== null && memory !== formatMemory(DEFAULT_MEMORY)) entry.mem = memory;
  const cpu = formatCpu(resolved.cpu ?? DEFAULT_CPU);
  if (cpu !== null && cpu !== formatCpu(DEFAULT_CPU)) entry.cpu = cpu;
  if (resolved.emails !== undefined && resolved.emails !== 'none') entry.emails = resolved.emails;
}

function retryKey(retry: number | undefined, entry: LoadEntry, notes: EntryNote[]): void {
  if (retry === undefined || retry === 0) return;
  if (retry > 5) {
    notes.push(
      note('retry-capped', 'retry', `runs are retried ${retry} times today; a load allows at most 5`, {
        changes: true,
      }),
    );
  }
  entry.retry = Math.min(retry, 5);
}

function typeKeys(resolved: Job, entry: LoadEntry, notes: EntryNote[]): void {
  switch (resolved.job_type) {
    case 'one-off':
      retryKey(resolved.retry, entry, notes);
      notes.push(
        note(
          'one-off',
          '',
          "one-off job: 'toolforge jobs load' does not create one-off jobs; if it must run again, use 'toolforge jobs run' with these options",
          { attention: true },
        ),
      );
      return;
    case 'scheduled':
      entry.schedule = scheduleOf(resolved, notes);
      retryKey(resolved.retry, entry, notes);
      if (resolved.timeout !== undefined && resolved.timeout > 0) {
        entry.timeout = resolved.timeout;
        notes.push(
          note(
            'timeout-cli',
            'timeout',
            "older jobs CLIs (2025) checked 'timeout' but did not send it: after loading, check it with 'toolforge jobs show'",
          ),
        );
      }
      return;
    case 'continuous':
      entry.continuous = true;
      if (resolved.port) entry.port = resolved.port_protocol === 'udp' ? `${resolved.port}/udp` : resolved.port;
      if (resolved.replicas !== undefined && resolved.replicas !== 1) entry.replicas = resolved.replicas;
      if (resolved.health_check?.type === 'script') entry['health-check-script'] = resolved.health_check.script;
      if (resolved.health_check?.type === 'http') entry['health-check-http'] = resolved.health_check.path;
  }
}

const WARNING_NOTES: Partial<Record<ParseWarning['code'], (w: ParseWarning) => EntryNote>> = {
  'raw-macro-schedule': (w) => note('schedule-moves', 'schedule', w.message, { changes: true }),
  'launcher-added-on-render': (w) => note('launcher-added', 'command', w.message, { changes: true }),
  'image-variant': (w) => note('image-variant', 'image', w.message),
  'extra-containers': (w) => note('extra-containers', '', w.message, { attention: true, changes: true }),
  'probe-not-parsed': (w) => note('probe-dropped', '', w.message, { attention: true, changes: true }),
};

/**
 * The load entry for a job (as parsed from its workload or decoded from its CR), with notes on what the entry
 * cannot carry or will change. `warnings` are the parser's warnings for the same workload, if any.
 */
export function entryFromJob(job: Job, settings: RuntimeSettings, warnings: readonly ParseWarning[] = []): EntryResult {
  const notes: EntryNote[] = [];
  const resolved = resolveJob(job, settings);
  const entry: LoadEntry = { name: job.job_name, command: job.cmd, image: imageName(job, resolved, notes) };
  if (job.job_name.length > JOB_NAME_MAX_LENGTH) {
    notes.push(
      note(
        'name-too-long',
        'name',
        `'${job.job_name}' is ${job.job_name.length} characters; a load allows at most ${JOB_NAME_MAX_LENGTH}: choose a shorter name`,
        { attention: true },
      ),
    );
  }
  // pods of a buildservice job without a mount label were given every mount by volume-admission: keep them
  if (warnings.some((w) => w.code === 'mount-label-missing') && resolved.mount === 'none') {
    resolved.mount = 'all';
    notes.push(
      note(
        'mount-made-explicit',
        'mount',
        "written as 'mount: all': this job had no mount label, and its pods were given every NFS mount",
        { changes: true },
      ),
    );
  }
  filelogKeys(resolved, settings, entry);
  resourceKeys(resolved, entry);
  typeKeys(resolved, entry, notes);
  for (const w of warnings) {
    const make = WARNING_NOTES[w.code];
    if (make) notes.push(make(w));
  }
  return { entry, notes };
}

/** Keys in the order `toolforge jobs dump` writes them (PyYAML sorts them). */
export function sortedEntry(entry: LoadEntry): LoadEntry {
  return Object.fromEntries(Object.entries(entry).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as LoadEntry;
}
