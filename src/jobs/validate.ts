import { CRON_FIELDS, CRON_MACROS, parseCron } from './cron.js';
import { imageTypeOf } from './images.js';
import { EMAIL_OPTIONS, JOB_TYPES, MOUNT_OPTIONS, PORT_PROTOCOLS, type Job } from './model.js';
import { parseQuantity } from './quantity.js';

export interface ValidationIssue {
  /** The CR field at fault, e.g. `spec.schedule.minute`. */
  path: string;
  message: string;
  severity: 'error' | 'warning';
  code: ValidationCode;
}

export type ValidationCode =
  | 'required'
  | 'type'
  | 'enum'
  | 'range'
  | 'name-format'
  | 'name-length'
  | 'legacy-name-length'
  | 'service-name'
  | 'schedule'
  | 'schedule-text'
  | 'quantity'
  | 'health-check'
  | 'mount-image'
  | 'filelog-mount';

/** RFC 1123 subdomain: what jobs-api and Kubernetes accept as a job (object) name. */
export const JOB_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const JOB_NAME_MAX_LENGTH = 52;
/** Before 2024-03-05 (T356523) only CronJobs were limited to 52; other names up to 63 exist in clusters. */
export const LEGACY_JOB_NAME_MAX_LENGTH = 63;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

type Issues = ValidationIssue[];

function error(issues: Issues, path: string, code: ValidationCode, message: string): void {
  issues.push({ path, message, severity: 'error', code });
}

function warning(issues: Issues, path: string, code: ValidationCode, message: string): void {
  issues.push({ path, message, severity: 'warning', code });
}

function checkInt(issues: Issues, path: string, value: unknown, min: number, max?: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    error(issues, path, 'type', `must be an integer`);
    return;
  }
  if (value < min || (max !== undefined && value > max)) {
    const bound = max === undefined ? `at least ${min}` : `between ${min} and ${max}`;
    error(issues, path, 'range', `must be ${bound}, got ${value}`);
  }
}

function checkEnum(issues: Issues, path: string, value: unknown, allowed: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    error(issues, path, 'enum', `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}

function checkString(issues: Issues, path: string, value: unknown): value is string {
  if (typeof value !== 'string' || value === '') {
    error(issues, path, 'required', 'must be a non-empty string');
    return false;
  }
  return true;
}

function checkName(issues: Issues, job: Job): void {
  const name: unknown = job.job_name;
  if (!checkString(issues, 'spec.job_name', name)) return;
  if (!JOB_NAME_PATTERN.test(name)) {
    error(
      issues,
      'spec.job_name',
      'name-format',
      "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
  }
  if (name.length <= JOB_NAME_MAX_LENGTH) return;
  if (job.job_type !== 'scheduled' && name.length <= LEGACY_JOB_NAME_MAX_LENGTH) {
    warning(
      issues,
      'spec.job_name',
      'legacy-name-length',
      `is ${name.length} characters: longer than ${JOB_NAME_MAX_LENGTH}, accepted only as a legacy name (jobs-api allowed up to ${LEGACY_JOB_NAME_MAX_LENGTH} for ${job.job_type} jobs before 2024-03-05)`,
    );
    return;
  }
  error(
    issues,
    'spec.job_name',
    'name-length',
    `must be at most ${JOB_NAME_MAX_LENGTH} characters, got ${name.length}`,
  );
}

function checkSchedule(issues: Issues, job: Job): void {
  if (job.job_type !== 'scheduled') return;
  const schedule: unknown = job.schedule;
  if (typeof schedule !== 'object' || schedule === null) {
    error(issues, 'spec.schedule', 'required', 'a scheduled job needs a schedule');
    return;
  }
  const s = schedule as Record<string, unknown>;
  let fieldsOk = true;
  for (const field of CRON_FIELDS) {
    if (typeof s[field.name] !== 'string' || s[field.name] === '') {
      error(issues, `spec.schedule.${field.name}`, 'required', 'must be a non-empty string');
      fieldsOk = false;
    }
  }
  if (typeof s['text'] !== 'string' || s['text'] === '') {
    error(issues, 'spec.schedule.text', 'required', 'must be a non-empty string');
    return;
  }
  if (!fieldsOk) return;
  const actual = CRON_FIELDS.map((f) => String(s[f.name])).join(' ');
  const parsed = parseCron(actual, job.tool_name, job.job_name);
  if (!parsed.ok) {
    error(issues, `spec.schedule.${parsed.problem.path || 'minute'}`, 'schedule', parsed.problem.message);
    return;
  }
  checkScheduleText(issues, job, s['text'], actual);
}

function checkScheduleText(issues: Issues, job: Job, text: string, actual: string): void {
  if (text.startsWith('@')) {
    if (!(text in CRON_MACROS)) {
      error(
        issues,
        'spec.schedule.text',
        'schedule',
        `unknown macro '${text}', expected one of ${Object.keys(CRON_MACROS).join(', ')}`,
      );
    }
    return;
  }
  const configured = parseCron(text, job.tool_name, job.job_name);
  if (!configured.ok) {
    error(issues, 'spec.schedule.text', 'schedule', configured.problem.message);
    return;
  }
  const fromText = CRON_FIELDS.map((f) => configured.value[f.name]).join(' ');
  if (fromText !== actual) {
    warning(
      issues,
      'spec.schedule.text',
      'schedule-text',
      `the text '${text}' does not match the schedule fields '${actual}'`,
    );
  }
}

function checkQuantity(issues: Issues, path: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || parseQuantity(value) === null) {
    error(issues, path, 'quantity', 'must be a Kubernetes quantity such as "512Mi" or "0.5"');
  }
}

function checkContinuous(issues: Issues, job: Job): void {
  if (job.job_type !== 'continuous') return;
  if (job.port !== null) checkInt(issues, 'spec.port', job.port, 1, 65535);
  checkEnum(issues, 'spec.port_protocol', job.port_protocol, PORT_PROTOCOLS);
  checkInt(issues, 'spec.replicas', job.replicas, 0);
  const hc: unknown = job.health_check;
  if (hc !== undefined && hc !== null) {
    const h = hc as Record<string, unknown>;
    if (h['type'] === 'script') checkString(issues, 'spec.health_check.script', h['script']);
    else if (h['type'] === 'http') {
      checkString(issues, 'spec.health_check.path', h['path']);
      if (!job.port) error(issues, 'spec.health_check', 'health-check', 'an http health check needs a port');
    } else checkEnum(issues, 'spec.health_check.type', h['type'], ['script', 'http']);
  }
  if (job.port && typeof job.job_name === 'string' && !DNS1035_LABEL.test(job.job_name)) {
    warning(
      issues,
      'spec.job_name',
      'service-name',
      'a job with a port gets a Service of the same name, which must be a DNS-1035 label (no dots, starts with a letter)',
    );
  }
}

function checkMountAndLogs(issues: Issues, job: Job): void {
  checkEnum(issues, 'spec.mount', job.mount, MOUNT_OPTIONS);
  if (job.mount !== undefined && job.mount !== 'all' && job.image && imageTypeOf(job.image) !== 'buildservice') {
    error(issues, 'spec.mount', 'mount-image', `mount '${job.mount}' is only supported for build service images`);
  }
  if (job.filelog !== undefined && typeof job.filelog !== 'boolean')
    error(issues, 'spec.filelog', 'type', 'must be a boolean');
  if (job.filelog === true && job.mount !== undefined && job.mount !== 'all') {
    error(issues, 'spec.filelog', 'filelog-mount', "file logging is only available with mount 'all'");
  }
}

/** jobs-api's model and API rules for a job definition; an empty list means jobs-api would accept it. */
export function validateJob(job: Job): ValidationIssue[] {
  const issues: Issues = [];
  checkEnum(issues, 'spec.job_type', job.job_type, JOB_TYPES);
  checkName(issues, job);
  checkString(issues, 'spec.tool_name', job.tool_name);
  checkString(issues, 'spec.cmd', job.cmd);
  if (typeof job.image !== 'object' || job.image === null) error(issues, 'spec.image', 'required', 'must be an object');
  else checkString(issues, 'spec.image.short_name', job.image.short_name);
  checkEnum(issues, 'spec.emails', job.emails, EMAIL_OPTIONS);
  checkQuantity(issues, 'spec.memory', job.memory);
  checkQuantity(issues, 'spec.cpu', job.cpu);
  if (job.job_type !== 'continuous') checkInt(issues, 'spec.retry', job.retry, 0, 5);
  if (job.job_type === 'scheduled') checkInt(issues, 'spec.timeout', job.timeout, 0);
  checkSchedule(issues, job);
  checkContinuous(issues, job);
  checkMountAndLogs(issues, job);
  return issues;
}

export function hasErrors(issues: readonly ValidationIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}
