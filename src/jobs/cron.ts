import { ok, problem } from '../errors.js';
import type { Result } from '../errors.js';
import type { CronSchedule } from './model.js';
import { PyRandom } from './pyrandom.js';

/**
 * jobs-api's cron handling (tjf/core/cron.py): five space-separated fields, or an @-macro that becomes a fixed
 * time chosen by Python's `random` seeded with "<tool> <job>", so the same job always lands on the same minute.
 */

interface CronField {
  readonly name: keyof Omit<CronSchedule, 'text'>;
  readonly min: number;
  readonly max: number;
  readonly mapping?: Readonly<Record<string, string>>;
}

export const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  {
    name: 'day_of_week',
    min: 0,
    max: 6,
    mapping: {
      '7': '0',
      sun: '0',
      mon: '1',
      tue: '2',
      wed: '3',
      thu: '4',
      fri: '5',
      sat: '6',
    },
  },
];

export const CRON_MACROS: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
};

/** A parsed schedule; a problem's path is the cron field at fault (`''` for the expression as a whole). */
export type CronResult = Result<CronSchedule>;

const PY_INT_RE = /^[ \t\n\r\f\v]*[+-]?\d+(?:_\d+)*[ \t\n\r\f\v]*$/;

/** Python's `int(str)`, null where it raises. */
function pyInt(text: string): number | null {
  return PY_INT_RE.test(text) ? Number(text.replaceAll('_', '').trim()) : null;
}

function fieldError(value: string, field: CronField, reason: string): CronResult {
  return problem(field.name, `Unable to parse cron expression "${value}": ${reason}`);
}

function checkRange(entry: string, field: CronField, whole: string): CronResult | null {
  const at = entry.indexOf('-');
  const [startText, endText] = [entry.slice(0, at), entry.slice(at + 1)];
  const start = pyInt(startText);
  if (start === null) return fieldError(whole, field, `Unable to parse '${startText}' as an integer`);
  const end = pyInt(endText);
  if (end === null) return fieldError(whole, field, `Unable to parse '${endText}' as an integer`);
  if (start > end) return fieldError(whole, field, `End value ${end} must be smaller than start value ${start}`);
  if (start < field.min) return fieldError(whole, field, `Start value ${start} must be at least ${field.min}`);
  if (end > field.max) return fieldError(whole, field, `End value ${end} must be at most ${field.max}`);
  return null;
}

function checkSingle(entry: string, field: CronField, whole: string): CronResult | null {
  const mapped = field.mapping?.[entry] ?? entry;
  const n = pyInt(mapped);
  if (n === null) return fieldError(whole, field, `Unable to parse '${mapped}' as an integer`);
  if (n < field.min || n > field.max)
    return fieldError(whole, field, `Invalid value '${mapped}', expected ${field.min}-${field.max}`);
  return null;
}

function checkStep(step: string, entry: string, field: CronField, whole: string): CronResult | null {
  const n = pyInt(step);
  if (n === null) return fieldError(whole, field, `Unable to parse '${step}' (from '${entry}') as an integer`);
  if (n === 0 || n < field.min || n > field.max) return fieldError(whole, field, `Invalid step value in '${entry}'`);
  return null;
}

/** `_assert_value`: null when the field is valid, else the error. */
function checkField(value: string, field: CronField, whole: string): CronResult | null {
  for (const original of value.split(',')) {
    let entry = original;
    let step: string | null = null;
    if (entry.includes('-')) {
      if (entry.includes('/')) return fieldError(whole, field, 'Step syntax is not supported with ranges');
    } else if (entry.includes('/')) {
      const at = entry.indexOf('/');
      step = entry.slice(at + 1);
      entry = entry.slice(0, at);
    }
    const error = entry.includes('-')
      ? checkRange(entry, field, whole)
      : entry === '*'
        ? null
        : checkSingle(entry, field, whole);
    if (error) return error;
    const stepError = step ? checkStep(step, entry, field, whole) : null;
    if (stepError) return stepError;
  }
  return null;
}

function toSchedule(text: string, parts: readonly string[]): CronSchedule {
  const [minute = '', hour = '', day = '', month = '', day_of_week = ''] = parts;
  return { text, minute, hour, day, month, day_of_week };
}

/** The fixed time jobs-api derives for an @-macro: one `randint` per non-"*" field, in field order. */
export function expandCronMacro(macro: string, toolName: string, jobName: string): string[] | null {
  const mapped = CRON_MACROS[macro];
  if (mapped === undefined) return null;
  const random = new PyRandom(`${toolName} ${jobName}`);
  return mapped.split(' ').map((part, i) => {
    const field = CRON_FIELDS[i];
    return part === '*' || field === undefined ? part : String(random.randint(field.min, field.max));
  });
}

const EXPRESSION_CACHE_LIMIT = 10_000;
/** Results for plain expressions, which do not depend on the job: a few hundred distinct ones serve thousands of jobs. */
const parsedExpressions = new Map<string, CronResult>();

/** `CronExpression.parse(value, job_name, tool_name)`. A plain expression's result is shared, and frozen. */
export function parseCron(value: string, toolName: string, jobName: string): CronResult {
  if (value.startsWith('@')) return parseMacro(value, toolName, jobName);
  let result = parsedExpressions.get(value);
  if (result === undefined) {
    result = parseExpression(value);
    if (result.ok) Object.freeze(result.value);
    Object.freeze(result);
    if (parsedExpressions.size >= EXPRESSION_CACHE_LIMIT) parsedExpressions.clear();
    parsedExpressions.set(value, result);
  }
  return result;
}

/** jobs-api lower-cases the schedule before parsing: `@DAILY` is `@daily`. The text stays as written. */
function parseMacro(value: string, toolName: string, jobName: string): CronResult {
  const parts = expandCronMacro(value.toLowerCase(), toolName, jobName);
  if (parts === null) {
    return problem(
      '',
      `Unable to parse cron expression "${value}": ` +
        `Invalid at-macro '${value}', supported macros are: ${Object.keys(CRON_MACROS).join(', ')}`,
    );
  }
  return ok(toSchedule(value, parts));
}

function parseExpression(value: string): CronResult {
  const parts = value
    .toLowerCase()
    .split(' ')
    .filter((p) => p !== '');
  if (parts.length !== 5) {
    return problem(
      '',
      `Unable to parse cron expression "${value}": Expected to find 5 space-separated values, found ${parts.length}`,
    );
  }
  for (const [i, field] of CRON_FIELDS.entries()) {
    const error = checkField(parts[i] ?? '', field, value);
    if (error) return error;
  }
  return ok(toSchedule(value, parts));
}

/** `CronExpression.from_runtime`: the configured text plus the five fields of the actual schedule. */
export function cronFromRuntime(actual: string, configured: string): CronResult {
  const parts = actual
    .trim()
    .split(' ')
    .filter((p) => p !== '');
  if (parts.length !== 5) {
    return problem(
      '',
      `Failed to parse cron expression '${actual}': expected to find 5 space-separated values, found ${parts.length}`,
    );
  }
  return ok(toSchedule(configured, parts));
}

/** `str(CronExpression)`: the five fields, as written to `spec.schedule`. */
export function formatCron(schedule: CronSchedule): string {
  return `${schedule.minute} ${schedule.hour} ${schedule.day} ${schedule.month} ${schedule.day_of_week}`;
}
