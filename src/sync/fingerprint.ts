import { hash } from 'node:crypto';
import type { CronSchedule, StoredJob } from '../jobs/model.js';
import type { FieldDiff, JobFingerprint } from './reconcile.js';

/*
 * What makes two resolved jobs the same for the sync: the fingerprint it keeps per job (docs/adr/0002) and the
 * per-field diff it computes on request. The two agree: equal fingerprints exactly when `diffJobs` finds nothing.
 */

/**
 * Images compare by what the user chose (short name and digest): host, path, type, state and aliases are resolved
 * from the image registry, and an API-created CR stores only the short name. jobs-api's own check likewise ignores
 * `exists`, `state` and `aliases`.
 */
function imageIdentity(image: unknown): unknown {
  if (!isPlainObject(image)) return image;
  return { short_name: image['short_name'], digest: image['digest'] || undefined };
}

/** The primitive fields of a job, in a fixed order; the objects (schedule, image, health check) follow them. */
const PRIMITIVE_FIELDS = [
  'cmd',
  'cpu',
  'emails',
  'filelog',
  'filelog_stderr',
  'filelog_stdout',
  'job_name',
  'job_type',
  'memory',
  'mount',
  'port',
  'port_protocol',
  'replicas',
  'retry',
  'timeout',
  'tool_name',
] as const;
const KNOWN_FIELDS: ReadonlySet<string> = new Set([...PRIMITIVE_FIELDS, 'schedule', 'image', 'health_check']);

/**
 * The fingerprint of a job whose defaults are resolved (jobs-api's `get_resolved_core_job`, src/jobs/resolve): the
 * SHA-256 (first 128 bits) of its fields as a JSON list in a fixed order, unset (undefined or null) fields as null, the image reduced
 * to its identity, fields the model does not know appended with sorted keys. Two jobs have the same fingerprint
 * exactly when `diffJobs` finds no difference. Runs for every job the sync lists, so it avoids sorting keys.
 */
export function jobFingerprint(job: StoredJob): JobFingerprint {
  const fields = job as unknown as Record<string, unknown>;
  const values: unknown[] = PRIMITIVE_FIELDS.map((k) => fields[k] ?? null);
  const schedule = fields['schedule'];
  values.push(
    isSchedule(schedule)
      ? [schedule.text, schedule.minute, schedule.hour, schedule.day, schedule.month, schedule.day_of_week]
      : sortedCopy(schedule ?? null),
    sortedCopy(imageIdentity(fields['image']) ?? null),
    sortedCopy(fields['health_check'] ?? null),
  );
  const unknown = Object.keys(fields).filter(
    (k) => !KNOWN_FIELDS.has(k) && fields[k] !== undefined && fields[k] !== null,
  );
  if (unknown.length > 0) values.push(sortedCopy(Object.fromEntries(unknown.map((k) => [k, fields[k]]))));
  // 128 of SHA-256's bits, as 22 characters: a 40-byte string per job rather than 64.
  return hash('sha256', JSON.stringify(values), 'buffer').toString('base64url', 0, 16);
}

const SCHEDULE_FIELDS = ['text', 'minute', 'hour', 'day', 'month', 'day_of_week'];

function isSchedule(value: unknown): value is CronSchedule {
  return (
    isPlainObject(value) &&
    SCHEDULE_FIELDS.every((k) => typeof value[k] === 'string') &&
    Object.keys(value).every((k) => SCHEDULE_FIELDS.includes(k) || value[k] === undefined || value[k] === null)
  );
}

function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = value[k];
    if (v !== undefined && v !== null) out[k] = sortedCopy(v);
  }
  return out;
}

/** Per-field differences between two resolved jobs, as dotted paths, in a stable order. */
export function diffJobs(storage: StoredJob, runtime: StoredJob): FieldDiff[] {
  const out: FieldDiff[] = [];
  walk('', storage, runtime, out);
  return out.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}

function walk(prefix: string, a: unknown, b: unknown, out: FieldDiff[]): void {
  if (prefix === 'image') {
    a = imageIdentity(a);
    b = imageIdentity(b);
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) walk(prefix ? `${prefix}.${k}` : k, a[k], b[k], out);
    return;
  }
  if (!sameValue(a, b)) out.push({ field: prefix, storage: a, runtime: b });
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === undefined || a === null) && (b === undefined || b === null)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
