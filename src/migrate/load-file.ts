import { z } from 'zod';
import {
  EMAIL_OPTIONS,
  formatCpu,
  formatMemory,
  JOB_NAME_MAX_LENGTH,
  JOB_NAME_PATTERN,
  MOUNT_OPTIONS,
  parseCron,
  type EmailOption,
  type Job,
  type MountOption,
  type PortProtocol,
} from '../jobs/index.js';

/**
 * The `toolforge jobs load` file (jobs.yaml): a YAML list of mappings whose keys are the long options of
 * `toolforge jobs run` without the leading `--` (hyphenated), and how jobs-api's CLI and API check and read it.
 * The rules follow the CLI of 2025 (argparse + `get_api_payload`) against jobs-api's `AnyNewJob` models.
 */

/** Every key the CLI accepts, in `toolforge jobs run`'s option order. */
export const LOAD_KEYS = [
  'name',
  'command',
  'image',
  'schedule',
  'continuous',
  'no-filelog',
  'filelog',
  'filelog-stdout',
  'filelog-stderr',
  'emails',
  'retry',
  'mem',
  'cpu',
  'mount',
  'timeout',
  'wait',
  'health-check-script',
  'health-check-http',
  'port',
  'replicas',
] as const;
export type LoadKey = (typeof LOAD_KEYS)[number];

/** One job of a load file, with the value forms `toolforge jobs dump` writes (booleans, not legacy strings). */
export interface LoadEntry {
  name: string;
  command: string;
  image: string;
  schedule?: string;
  continuous?: true;
  'no-filelog'?: true;
  filelog?: true;
  'filelog-stdout'?: string;
  'filelog-stderr'?: string;
  emails?: EmailOption;
  retry?: number;
  mem?: string;
  cpu?: string;
  mount?: MountOption;
  timeout?: number;
  wait?: true | number;
  'health-check-script'?: string;
  'health-check-http'?: string;
  /** An integer (tcp), or "N/tcp" / "N/udp". There is no `port-protocol` key. */
  port?: number | string;
  replicas?: number;
}

export type LoadIssueCode =
  | 'not-a-list'
  | 'not-a-mapping'
  | 'unknown-key'
  | 'underscore-key'
  | 'abbreviated-key'
  | 'ambiguous-key'
  | 'required'
  | 'value'
  | 'legacy-value'
  | 'ignored-value'
  | 'name'
  | 'duplicate-name'
  | 'schedule'
  | 'port'
  | 'quantity'
  | 'exclusive'
  | 'job-type'
  | 'filelog'
  | 'mount'
  | 'health-check'
  | 'one-off';

export interface LoadIssue {
  /** Where in the file, e.g. `jobs[2].schedule`. */
  path: string;
  code: LoadIssueCode;
  message: string;
  /** An error makes the CLI or jobs-api refuse the entry (and argparse errors abort the rest of the load). */
  severity: 'error' | 'warning';
}

/** API and underscore spellings people write, and the load key that means the same. */
const SPELLING_HINTS: Readonly<Record<string, string>> = {
  cmd: "write 'command'",
  imagename: "write 'image'",
  memory: "write 'mem'",
  job_type: "the job type is not written: 'schedule' makes a scheduled job, 'continuous: true' a continuous one",
  'job-type': "the job type is not written: 'schedule' makes a scheduled job, 'continuous: true' a continuous one",
  port_protocol: 'there is no protocol key: write the protocol on the port, e.g. port: "8000/udp"',
  'port-protocol': 'there is no protocol key: write the protocol on the port, e.g. port: "8000/udp"',
  health_check: "write 'health-check-script' or 'health-check-http'",
  'health-check': "write 'health-check-script' or 'health-check-http'",
};

const intLike = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^\s*[+-]?\d+\s*$/)
    .transform(Number),
]);
const quantityLike = z.union([z.string(), z.number().transform(String)]);
/** The CLI hands every value to argparse as text: a YAML number is as good as the same digits quoted. */
const text = z.union([z.string(), z.number().transform(String)]);

/** Value forms per key, as argparse (`type=int`, `choices`, flags) and the CLI's YAML handling accept them. */
const VALUE_SCHEMAS: Readonly<Record<LoadKey, z.ZodType>> = {
  name: text,
  command: text.pipe(z.string().min(1, 'must be a non-empty string')).refine((s) => !s.startsWith('-'), {
    message: "must not start with '-': argparse takes it for an option ('expected one argument')",
  }),
  image: text.pipe(z.string().min(1, 'must be a non-empty string')),
  schedule: z.string({ error: 'must be a quoted string, e.g. "@daily" or "*/5 * * * *"' }),
  continuous: z.boolean(),
  'no-filelog': z.union([z.boolean(), z.literal('true')]),
  filelog: z.union([z.boolean(), z.literal('yes')]),
  'filelog-stdout': text.pipe(z.string().min(1)),
  'filelog-stderr': text.pipe(z.string().min(1)),
  emails: z.enum(EMAIL_OPTIONS),
  retry: intLike.pipe(z.number().min(0).max(5, 'must be between 0 and 5')),
  mem: quantityLike,
  cpu: quantityLike,
  mount: z.enum(MOUNT_OPTIONS),
  timeout: intLike.pipe(z.number().min(0, 'must be at least 0 seconds')),
  wait: z.union([z.boolean(), intLike.pipe(z.number().min(0))]),
  'health-check-script': text.pipe(z.string().min(1)),
  'health-check-http': text.pipe(z.string().min(1)),
  port: z.union([z.number().int(), z.string()]),
  replicas: intLike.pipe(z.number().min(0, 'must be at least 0')),
};

const PORT_TEXT = /^(\d+)(?:\/(tcp|udp))?$/;

/** The port and protocol of a `port` value; null when it is not one the CLI and API accept. */
export function parsePortValue(value: number | string): { port: number; protocol?: PortProtocol } | null {
  const text = String(value);
  const m = PORT_TEXT.exec(text);
  if (!m) return null;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return null;
  return m[2] === undefined ? { port } : { port, protocol: m[2] as PortProtocol };
}

type Entry = Record<string, unknown>;

interface Collector {
  issues: LoadIssue[];
  at: string;
}

function add(c: Collector, key: string, code: LoadIssueCode, message: string, severity: 'error' | 'warning' = 'error') {
  c.issues.push({ path: key ? `${c.at}.${key}` : c.at, code, message, severity });
}

/** Maps the keys as argparse would (full names, unambiguous prefixes); reports every other key. */
function normalizeKeys(raw: Entry, c: Collector): Entry {
  const out: Entry = {};
  for (const [key, value] of Object.entries(raw)) {
    if ((LOAD_KEYS as readonly string[]).includes(key)) {
      out[key] = value;
      continue;
    }
    const hint = SPELLING_HINTS[key];
    const hyphenated = key.replaceAll('_', '-');
    if (key.includes('_') && (LOAD_KEYS as readonly string[]).includes(hyphenated)) {
      add(c, key, 'underscore-key', `keys are hyphenated: write '${hyphenated}' (the CLI rejects '--${key}')`);
      continue;
    }
    const candidates = LOAD_KEYS.filter((k) => k !== 'name' && k.startsWith(key));
    if (hint === undefined && candidates.length === 1 && candidates[0] !== undefined) {
      const full = candidates[0];
      add(c, key, 'abbreviated-key', `taken as '${full}' (argparse accepts abbreviations); write '${full}'`, 'warning');
      out[full] = value;
    } else if (hint === undefined && candidates.length > 1) {
      add(c, key, 'ambiguous-key', `ambiguous: could be ${candidates.map((k) => `'${k}'`).join(', ')}`);
    } else {
      add(c, key, 'unknown-key', `unknown key${hint ? `: ${hint}` : ''} (the CLI exits with 'unrecognized arguments')`);
    }
  }
  return out;
}

/** Checks each value's form; returns the entry with values as the CLI would use them (flags resolved). */
function checkValues(entry: Entry, c: Collector): Entry {
  const out: Entry = {};
  for (const key of LOAD_KEYS) {
    const value = entry[key];
    if (value === undefined || value === null) continue;
    const parsed = VALUE_SCHEMAS[key].safeParse(value);
    if (!parsed.success) {
      add(c, key, 'value', parsed.error.issues[0]?.message ?? 'invalid value');
      continue;
    }
    const v = flagValue(key, parsed.data, c);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

const FLAGS: ReadonlySet<string> = new Set(['continuous', 'no-filelog', 'filelog', 'wait']);
const LEGACY_TRUE: Readonly<Record<string, string>> = { 'no-filelog': 'true', filelog: 'yes' };

/** Flags as the CLI takes them: `false` is left out, the legacy strings mean true. */
function flagValue(key: LoadKey, v: unknown, c: Collector): unknown {
  if (v === false && FLAGS.has(key)) {
    add(c, key, 'ignored-value', `'${key}: false' is left out by the CLI (with a warning); remove it`, 'warning');
    return undefined;
  }
  if (LEGACY_TRUE[key] !== undefined && v === LEGACY_TRUE[key]) {
    add(c, key, 'legacy-value', `the string '${String(v)}' is deprecated: write '${key}: true'`, 'warning');
    return true;
  }
  return v;
}

function jobTypeOf(e: Entry): Job['job_type'] {
  if (e['schedule'] !== undefined) return 'scheduled';
  return e['continuous'] === true ? 'continuous' : 'one-off';
}

function checkRequired(given: Entry, c: Collector): void {
  for (const key of ['name', 'command', 'image'] as const) {
    if (given[key] === undefined || given[key] === null) add(c, key, 'required', `'${key}' is required`);
  }
}

function checkName(e: Entry, c: Collector): void {
  const name = e['name'];
  if (typeof name !== 'string') return;
  if (!JOB_NAME_PATTERN.test(name)) {
    add(
      c,
      'name',
      'name',
      "must consist of lower case alphanumeric characters, '-' or '.', and start and end with an alphanumeric character",
    );
  }
  if (name.length > JOB_NAME_MAX_LENGTH) {
    add(c, 'name', 'name', `must be at most ${JOB_NAME_MAX_LENGTH} characters, got ${name.length}`);
  }
}

function checkExclusive(e: Entry, c: Collector): void {
  if (e['schedule'] !== undefined && e['continuous'] === true) {
    add(c, 'continuous', 'exclusive', "Only one of 'continuous' and 'schedule' can be set at the same time");
  }
  if (e['wait'] !== undefined && (e['schedule'] !== undefined || e['continuous'] === true)) {
    add(
      c,
      'wait',
      'exclusive',
      "'wait' is only for one-off jobs: it cannot be combined with 'schedule' or 'continuous'",
    );
  }
  if (e['filelog'] !== undefined && e['no-filelog'] !== undefined) {
    add(c, 'no-filelog', 'exclusive', "'filelog' and 'no-filelog' cannot be combined");
  }
  if (e['health-check-script'] !== undefined && e['health-check-http'] !== undefined) {
    add(c, 'health-check-http', 'exclusive', "'health-check-script' and 'health-check-http' cannot be combined");
  }
}

function checkPerType(e: Entry, c: Collector, type: Job['job_type']): void {
  if (type !== 'continuous') {
    if (e['port'] !== undefined) add(c, 'port', 'job-type', '--port is only valid for continuous jobs');
    if (e['replicas'] !== undefined && e['replicas'] !== 0)
      add(c, 'replicas', 'job-type', '--replicas is only valid for continuous jobs');
    for (const key of ['health-check-script', 'health-check-http']) {
      if (e[key] !== undefined) add(c, key, 'job-type', 'Health checks are only supported for continuous jobs.');
    }
  }
  if (type === 'continuous' && e['retry'] !== undefined) {
    add(c, 'retry', 'job-type', "continuous jobs have no 'retry': jobs-api rejects it (they are restarted always)");
  }
  if (type !== 'scheduled' && e['timeout'] !== undefined) {
    add(c, 'timeout', 'job-type', '--timeout is only valid for scheduled jobs');
  }
  if (type === 'one-off') {
    add(
      c,
      '',
      'one-off',
      "one-off job (no 'schedule', no 'continuous: true'): jobs-api does not create one-off jobs from a load; use 'toolforge jobs run'",
      'warning',
    );
  }
}

function checkSchedule(e: Entry, c: Collector): void {
  const schedule = e['schedule'];
  if (typeof schedule !== 'string') return;
  const name = typeof e['name'] === 'string' ? e['name'] : 'job';
  // the tool only seeds the time an @-macro lands on; whether the text parses does not depend on it
  const result = parseCron(schedule, 'tool', name);
  if (!result.ok) add(c, 'schedule', 'schedule', result.problem.message);
}

function checkPortAndQuantities(e: Entry, c: Collector): void {
  const port = e['port'];
  if ((typeof port === 'number' || typeof port === 'string') && parsePortValue(port) === null) {
    add(c, 'port', 'port', `must be a port 1-65535, optionally with '/tcp' or '/udp', got '${String(port)}'`);
  }
  if (e['health-check-http'] !== undefined && port === undefined) {
    add(c, 'health-check-http', 'health-check', '--health-check-http requires --port to be set as well');
  }
  checkQuantity(e, c, 'mem', formatMemory, '512Mi, 2Gi');
  checkQuantity(e, c, 'cpu', formatCpu, '500m, 2');
}

function checkQuantity(e: Entry, c: Collector, key: 'mem' | 'cpu', format: (q: string) => string | null, eg: string) {
  const value = e[key];
  if (typeof value !== 'string') return;
  const formatted = format(value);
  if (formatted === null) add(c, key, 'quantity', `'${value}' is not a Kubernetes quantity (e.g. ${eg})`);
  else if (!(Number.parseFloat(formatted) > 0)) add(c, key, 'quantity', `must be more than 0, got '${value}'`);
}

/** filelog and mount: the CLI's and the core model's rules, with the image-dependent defaults. */
function checkFilelogAndMount(e: Entry, c: Collector): void {
  const image = e['image'];
  if (typeof image !== 'string') return;
  const buildservice = isBuildserviceImageName(image);
  const filelog = effectiveFilelog(e, buildservice);
  const mount = e['mount'] ?? (buildservice ? 'none' : 'all');
  if (mount === 'none' && !buildservice) {
    add(c, 'mount', 'mount', 'Mount type none is only supported for build service images');
  }
  if (filelog && mount === 'none') add(c, 'mount', 'filelog', 'Specifying --filelog requires --mount=all');
  if (!filelog) {
    for (const key of ['filelog-stdout', 'filelog-stderr']) {
      if (e[key] !== undefined)
        add(c, key, 'filelog', 'Specifying --filelog-stdout or --filelog-stderr requires --filelog');
    }
  }
}

/** The CLI's test for a build service image: a name with a '/' (`tool-<tool>/<name>:<tag>`). */
export function isBuildserviceImageName(image: string): boolean {
  return image.includes('/');
}

function effectiveFilelog(e: Entry, buildservice: boolean): boolean {
  if (e['no-filelog'] === true) return false;
  if (e['filelog'] === true) return true;
  return !buildservice;
}

/** All problems of one entry; `index` gives the `jobs[i]` path. */
export function validateLoadEntry(raw: unknown, index: number): LoadIssue[] {
  const c: Collector = { issues: [], at: `jobs[${index}]` };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    add(c, '', 'not-a-mapping', 'each job must be a mapping of keys to values');
    return c.issues;
  }
  const given = normalizeKeys(raw as Entry, c);
  const e = checkValues(given, c);
  checkRequired(given, c);
  checkName(e, c);
  checkExclusive(e, c);
  checkPerType(e, c, jobTypeOf(e));
  checkSchedule(e, c);
  checkPortAndQuantities(e, c);
  checkFilelogAndMount(e, c);
  return c.issues;
}

/** Validates a whole load file (its parsed YAML) against the CLI's and jobs-api's rules. Never throws. */
export function validateLoadFile(value: unknown): LoadIssue[] {
  if (!Array.isArray(value)) {
    return [
      {
        path: 'jobs',
        code: 'not-a-list',
        message: 'the file must be a YAML list of jobs (one mapping per job)',
        severity: 'error',
      },
    ];
  }
  const issues: LoadIssue[] = [];
  const seen = new Map<string, number>();
  value.forEach((raw, i) => {
    issues.push(...validateLoadEntry(raw, i));
    const name = typeof raw === 'object' && raw !== null ? (raw as Entry)['name'] : undefined;
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, i);
    else
      issues.push({
        path: `jobs[${i}].name`,
        code: 'duplicate-name',
        message: `'${name}' is also jobs[${first}]: a tool's jobs need distinct names, and a load keeps only the last`,
        severity: 'error',
      });
  });
  return issues;
}

export function hasLoadErrors(issues: readonly LoadIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}

/**
 * The job jobs-api builds from a load entry: the CLI turns the keys into `run` arguments and a payload (always
 * sending `filelog`, computed from the image when not given), and the API keeps exactly the fields sent. The entry
 * must be valid (`validateLoadEntry` without errors). `timeout` is read as the API reads it (see the format notes:
 * the 2025 CLI validated it but did not send it).
 */
export function jobFromLoadEntry(entry: LoadEntry, tool: string): Job {
  const common = commonFields(entry, tool);
  if (entry.schedule !== undefined) {
    const cron = parseCron(entry.schedule, tool, entry.name);
    if (!cron.ok) throw new TypeError(`entry '${entry.name}' has an invalid schedule: ${cron.problem.message}`);
    return {
      ...common,
      job_type: 'scheduled',
      schedule: cron.value,
      ...(entry.retry === undefined ? {} : { retry: entry.retry }),
      ...(entry.timeout === undefined ? {} : { timeout: entry.timeout }),
    } as unknown as Job;
  }
  if (entry.continuous !== true) {
    return {
      ...common,
      job_type: 'one-off',
      ...(entry.retry === undefined ? {} : { retry: entry.retry }),
    } as unknown as Job;
  }
  return { ...common, ...continuousFields(entry) } as unknown as Job;
}

/** The fields every job type has, as the CLI sends them (filelog always) and the API normalizes them. */
function commonFields(entry: LoadEntry, tool: string): Record<string, unknown> {
  const buildservice = isBuildserviceImageName(entry.image);
  const common: Record<string, unknown> = {
    job_name: entry.name,
    tool_name: tool,
    cmd: entry.command,
    image: { short_name: entry.image },
    filelog: effectiveFilelog(entry as unknown as Entry, buildservice),
  };
  if (entry['filelog-stdout'] !== undefined) common['filelog_stdout'] = entry['filelog-stdout'];
  if (entry['filelog-stderr'] !== undefined) common['filelog_stderr'] = entry['filelog-stderr'];
  if (entry.emails !== undefined) common['emails'] = entry.emails;
  if (entry.mount !== undefined) common['mount'] = entry.mount;
  if (entry.mem !== undefined) common['memory'] = formatMemory(entry.mem) ?? entry.mem;
  if (entry.cpu !== undefined) common['cpu'] = formatCpu(String(entry.cpu)) ?? String(entry.cpu);
  return common;
}

function continuousFields(entry: LoadEntry): Record<string, unknown> {
  const job: Record<string, unknown> = { job_type: 'continuous' };
  if (entry.port !== undefined) {
    const port = parsePortValue(entry.port);
    if (port === null) throw new TypeError(`entry '${entry.name}' has an invalid port '${String(entry.port)}'`);
    job['port'] = port.port;
    if (port.protocol !== undefined) job['port_protocol'] = port.protocol;
  }
  if (entry.replicas !== undefined) job['replicas'] = entry.replicas;
  if (entry['health-check-script'] !== undefined)
    job['health_check'] = { type: 'script', script: entry['health-check-script'] };
  if (entry['health-check-http'] !== undefined)
    job['health_check'] = { type: 'http', path: entry['health-check-http'] };
  return job;
}
