import { parseQuantity, compareDec } from '../jobs/index.js';
import { isObject } from '../runtime/object.js';
import { commandParts, describeLog } from './command-parts.js';
import type { ComparedKind } from './normalize.js';

/**
 * Whether a difference between a live workload and jobs-api's render of its CR changes what runs (or where its
 * output goes): `functional`; or nothing reads it at run time: `cosmetic`. The classifier is the table below,
 * first match wins, over a kind-independent path (`container.…`, `pod.…`, `cronjob.…`, `job.…`, `deployment.…`,
 * `service.…`, `metadata.…`). A field no rule names is functional: only a field known to be inert is cosmetic.
 */

export type DifferenceClass = 'functional' | 'cosmetic';

export interface Classification {
  class: DifferenceClass;
  reason: string;
  /** The rule that matched (for tests and the JSON output). */
  rule: string;
  recreate?: true;
}

interface Values {
  live: unknown;
  rendered: unknown;
  /** The label, annotation, env or volume name in the path, when there is one. */
  key: string;
  kind: ComparedKind;
}

interface Rule {
  rule: string;
  path: RegExp;
  /** Fixed, or decided by the values (a label made explicit at the value it already defaulted to is cosmetic). */
  class: DifferenceClass | ((v: Values) => DifferenceClass);
  reason: (v: Values) => string;
  recreate?: true;
}

/** A value in one line: strings quoted only when they could be confused, lists and maps as JSON. */
export function show(value: unknown): string {
  if (value === undefined || value === null) return '(unset)';
  if (typeof value === 'string') return value === '' ? "''" : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Values longer than this are not repeated in a reason: the difference's line shows them already. */
const LONG_VALUE = 60;

/** "would rise from A to B", "would be set to B", … for a value that changes. */
function change(what: string, v: Values, unit = ''): string {
  const { live, rendered } = v;
  const l = show(live);
  const r = show(rendered);
  const long = l.length > LONG_VALUE || r.length > LONG_VALUE;
  if (live === undefined || live === null) return long ? `${what} would be set` : `${what} would be set to ${r}${unit}`;
  if (rendered === undefined || rendered === null)
    return long ? `${what} would be removed` : `${what} (${l}${unit}) would be removed`;
  return long ? `${what} would change` : `${what} would change from ${l}${unit} to ${r}${unit}`;
}

/** The image by its last path segment ("toolforge-python311-sssd-web:latest"), unless only the registry differs. */
function imageChange(v: Values): string {
  const tail = (x: unknown): unknown => (typeof x === 'string' ? x.slice(x.lastIndexOf('/') + 1) : x);
  const short = { ...v, live: tail(v.live), rendered: tail(v.rendered) };
  return change('the image', short.live === short.rendered ? v : short);
}

function quantityChange(what: string, v: Values): string {
  const l = typeof v.live === 'string' ? parseQuantity(v.live) : null;
  const r = typeof v.rendered === 'string' ? parseQuantity(v.rendered) : null;
  if (l === null || r === null) return change(what, v);
  const verb = compareDec(l, r) < 0 ? 'rise' : 'drop';
  return `${what} would ${verb} from ${show(v.live)} to ${show(v.rendered)}`;
}

function logMove(stream: string, v: Values): string {
  const l = typeof v.live === 'string' ? v.live : null;
  const r = typeof v.rendered === 'string' ? v.rendered : null;
  return `${stream} would move from ${describeLog(l)} to ${describeLog(r)}`;
}

function commandOf(value: unknown): { command: unknown; args: unknown } {
  return isObject(value) ? { command: value['command'], args: value['args'] } : { command: value, args: undefined };
}

const FORM: Readonly<Record<string, string>> = {
  exec: "'exec' redirects in a shell",
  trailing: 'redirects after the command in a shell (they apply to its last part only)',
  shell: 'a shell',
  direct: 'no shell',
};

function commandChange(v: Values): string {
  const l = commandOf(v.live);
  const r = commandOf(v.rendered);
  const lp = commandParts(l.command, l.args, undefined);
  const rp = commandParts(r.command, r.args, undefined);
  if (lp.cmd !== rp.cmd) return `the command would change from '${lp.cmd}' to '${rp.cmd}'`;
  if (lp.form !== rp.form)
    return `'${rp.cmd}' would run with ${FORM[rp.form] ?? rp.form} instead of ${FORM[lp.form] ?? lp.form}`;
  return `the container command would change from ${show(v.live)} to ${show(v.rendered)}`;
}

/** volume-admission mounts everything when a pod has no mount-storage label. */
const MOUNT_DEFAULT = 'all';
/** The emailer and jobs-api read a missing emails label as "none". */
const EMAILS_DEFAULT = 'none';

function effective(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function sameEffective(fallback: string): (v: Values) => DifferenceClass {
  return (v) => (effective(v.live, fallback) === effective(v.rendered, fallback) ? 'cosmetic' : 'functional');
}

function mountChange(v: Values): string {
  const l = effective(v.live, MOUNT_DEFAULT);
  const r = effective(v.rendered, MOUNT_DEFAULT);
  const live = typeof v.live === 'string' ? l : `no label, volume-admission's default ${MOUNT_DEFAULT}`;
  if (l === r) return `the mount-storage label would be made explicit (${live} → ${r}): the same NFS mounts`;
  if (r === 'none') return `the NFS mounts would be removed (mount-storage ${live} → none)`;
  if (l === 'none') return `the NFS mounts would be added (mount-storage none → ${r})`;
  return change('the mount-storage label', v);
}

function emailsChange(v: Values): string {
  const l = effective(v.live, EMAILS_DEFAULT);
  const r = effective(v.rendered, EMAILS_DEFAULT);
  if (l === r) return `the emails label would be made explicit (${show(v.live)} → ${r}): the same mail`;
  return `emails would change from ${l} to ${r} (the jobs emailer reads this label)`;
}

function objectChange(v: Values): string {
  if (v.live === undefined) return `a ${v.kind} would be created`;
  if (v.kind === 'Service') return "the Service would be deleted: the job's port is no longer reachable by name";
  return `the ${v.kind} would be deleted`;
}

/** Labels jobs-api's own selector uses to find a job's objects. */
const LOOKUP_LABELS = new Set([
  'toolforge',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/created-by',
  'app.kubernetes.io/component',
  'app.kubernetes.io/name',
]);

function labelChange(v: Values): string {
  const role = LOOKUP_LABELS.has(v.key)
    ? "jobs-api's lookup label; no controller acts on it"
    : 'no controller acts on it';
  return `${change(`label ${v.key}`, v)} (${role})`;
}

const KEY = String.raw`\[("(?:[^"\\]|\\.)*"|[^\]]*)\]`;
const METADATA = String.raw`(?:pod\.|jobTemplate\.)?metadata`;

/** The classifier. Order matters: specific rules first, the catch-alls for labels and annotations last. */
export const RULES: readonly Rule[] = [
  { rule: 'object', path: /^\(object\)$/, class: 'functional', reason: objectChange },
  { rule: 'api-version', path: /^apiVersion$/, class: 'cosmetic', reason: (v) => change('the API version', v) },
  { rule: 'stdout', path: /^container\.command \(stdout\)$/, class: 'functional', reason: (v) => logMove('stdout', v) },
  { rule: 'stderr', path: /^container\.command \(stderr\)$/, class: 'functional', reason: (v) => logMove('stderr', v) },
  {
    rule: 'log-path-spelling',
    path: /^container\.command \(paths\)$/,
    class: 'cosmetic',
    reason: () =>
      'the same command and log files; the log paths would be written absolute instead of relative to the working directory',
  },
  { rule: 'command', path: /^container\.(?:command|args)$/, class: 'functional', reason: commandChange },
  { rule: 'image', path: /^container\.image$/, class: 'functional', reason: imageChange },
  {
    rule: 'image-pull-policy',
    path: /^container\.imagePullPolicy$/,
    class: 'functional',
    reason: (v) => change('the image pull policy', v),
  },
  {
    rule: 'working-dir',
    path: /^container\.workingDir$/,
    class: 'functional',
    reason: (v) => change('the working directory', v),
  },
  ...(['requests', 'limits'] as const).flatMap((group) =>
    (['cpu', 'memory'] as const).map((res): Rule => ({
      rule: `${res}-${group === 'requests' ? 'request' : 'limit'}`,
      path: new RegExp(String.raw`^container\.resources\.${group}\.${res}$`),
      class: 'functional',
      reason: (v) => quantityChange(`${res} ${group === 'requests' ? 'request' : 'limit'}`, v),
    })),
  ),
  {
    rule: 'resources',
    path: /^container\.resources/,
    class: 'functional',
    reason: (v) => change('the resources', v),
  },
  {
    rule: 'env',
    path: new RegExp(String.raw`^container\.env${KEY}`),
    class: 'functional',
    reason: (v) => change(`env ${v.key}`, v),
  },
  {
    rule: 'volume-mounts',
    path: /^container\.volumeMounts/,
    class: 'functional',
    reason: (v) => change(`the volume mount ${v.key}`.trimEnd(), v),
  },
  {
    rule: 'volumes',
    path: /^pod\.spec\.volumes/,
    class: 'functional',
    reason: (v) => `${change(`the volume ${v.key}`.trimEnd(), v)} (volume-admission adds NFS mounts by label)`,
  },
  {
    rule: 'mount-storage',
    path: new RegExp(String.raw`^${METADATA}\.labels\["toolforge\.org/mount-storage"\]$`),
    class: sameEffective(MOUNT_DEFAULT),
    reason: mountChange,
  },
  {
    rule: 'emails',
    path: new RegExp(String.raw`^${METADATA}\.labels\["jobs\.toolforge\.org/emails"\]$`),
    class: sameEffective(EMAILS_DEFAULT),
    reason: emailsChange,
  },
  {
    rule: 'schedule',
    path: /^cronjob\.schedule$/,
    class: 'functional',
    reason: (v) => change('the schedule', v),
  },
  { rule: 'time-zone', path: /^cronjob\.timeZone$/, class: 'functional', reason: (v) => change('the time zone', v) },
  {
    rule: 'concurrency',
    path: /^cronjob\.concurrencyPolicy$/,
    class: 'functional',
    reason: (v) => change('overlapping runs (concurrencyPolicy)', v),
  },
  {
    rule: 'starting-deadline',
    path: /^cronjob\.startingDeadlineSeconds$/,
    class: 'functional',
    reason: (v) => change('how late a missed run may still start', v, 's'),
  },
  { rule: 'suspend', path: /^cronjob\.suspend$/, class: 'functional', reason: (v) => change('suspend', v) },
  {
    rule: 'history',
    path: /^cronjob\.(?:successful|failed)JobsHistoryLimit$/,
    class: 'cosmetic',
    reason: (v) => `${change('the number of finished Jobs kept', v)} (only what kubectl shows afterwards)`,
  },
  {
    rule: 'timeout',
    path: /^job\.activeDeadlineSeconds$/,
    class: 'functional',
    reason: (v) => change('the timeout', v, 's'),
  },
  { rule: 'retry', path: /^job\.backoffLimit$/, class: 'functional', reason: (v) => change('retries', v) },
  {
    rule: 'ttl',
    path: /^job\.ttlSecondsAfterFinished$/,
    class: 'cosmetic',
    reason: (v) => `${change('how long a finished Job is kept', v, 's')} (cleanup only)`,
  },
  { rule: 'replicas', path: /^deployment\.replicas$/, class: 'functional', reason: (v) => change('replicas', v) },
  {
    rule: 'strategy',
    path: /^deployment\.strategy/,
    class: 'functional',
    reason: (v) => change('the rollout strategy', v),
  },
  {
    rule: 'selector',
    path: /^deployment\.selector/,
    class: 'cosmetic',
    recreate: true,
    reason: (v) =>
      `${change('the selector', v)}; the selector is immutable: jobs-api's update gets 422 and deletes and recreates the Deployment`,
  },
  {
    rule: 'deployment-bookkeeping',
    path: /^deployment\.(?:progressDeadlineSeconds|revisionHistoryLimit)$/,
    class: 'cosmetic',
    reason: (v) => `${change('rollout bookkeeping', v)} (status reporting only)`,
  },
  { rule: 'ports', path: /^container\.ports/, class: 'functional', reason: (v) => change('the container port', v) },
  {
    rule: 'probes',
    path: /^container\.(?:startupProbe|livenessProbe|readinessProbe)/,
    class: 'functional',
    reason: (v) => change('the health check', v),
  },
  {
    rule: 'restart-policy',
    path: /^pod\.spec\.restartPolicy$/,
    class: 'functional',
    reason: (v) => change('the restart policy', v),
  },
  {
    rule: 'grace-period',
    path: /^pod\.spec\.terminationGracePeriodSeconds$/,
    class: 'functional',
    reason: (v) => change('the shutdown grace period', v, 's'),
  },
  {
    rule: 'security-context',
    path: /^(?:pod\.spec|container)\.securityContext/,
    class: 'functional',
    reason: (v) => change('the security context', v),
  },
  {
    rule: 'topology-spread',
    path: /^pod\.spec\.topologySpreadConstraints/,
    class: 'cosmetic',
    reason: (v) => `${change('the spread preference', v)} (ScheduleAnyway: a soft scheduling hint)`,
  },
  {
    rule: 'container-name',
    path: /^container\.name$/,
    class: 'cosmetic',
    reason: (v) => `${change('the container name', v)} (nothing refers to it)`,
  },
  {
    rule: 'extra-container',
    path: /^pod\.spec\.containers\[[1-9]\d*\]/,
    class: 'functional',
    reason: (v) => change('a second container', v),
  },
  {
    rule: 'restarted-at',
    path: /^pod\.metadata\.annotations\["app\.kubernetes\.io\/restartedAt"\]$/,
    class: 'cosmetic',
    reason: (v) => `${change('the restart mark', v)} (changing it rolls the pods once)`,
  },
  {
    rule: 'cron-expression',
    path: /^metadata\.annotations\["jobs\.toolforge\.org\/cron-expression"\]$/,
    class: 'cosmetic',
    reason: (v) => `${change('the recorded schedule text', v)} (jobs-api's record; spec.schedule is what runs)`,
  },
  {
    rule: 'service-ports',
    path: /^service\.ports/,
    class: 'functional',
    reason: (v) => change('the Service port', v),
  },
  {
    rule: 'service-selector',
    path: /^service\.selector/,
    class: 'functional',
    reason: (v) => `${change('the Service selector', v)} (which pods get the traffic)`,
  },
  {
    rule: 'job-template-name',
    path: /^jobTemplate\.metadata\.name$/,
    class: 'cosmetic',
    reason: (v) => `${change("the Job template's name", v)} (the CronJob controller names each run itself)`,
  },
  { rule: 'labels', path: new RegExp(String.raw`^${METADATA}\.labels${KEY}$`), class: 'cosmetic', reason: labelChange },
  {
    rule: 'annotations',
    path: new RegExp(String.raw`^${METADATA}\.annotations${KEY}$`),
    class: 'cosmetic',
    reason: (v) => `${change(`annotation ${v.key}`, v)} (no controller acts on it)`,
  },
];

const PREFIXES: Readonly<Record<ComparedKind, readonly [RegExp, string][]>> = {
  CronJob: [
    [/^spec\.jobTemplate\.spec\.template\./, 'pod.'],
    [/^spec\.jobTemplate\.spec\./, 'job.'],
    [/^spec\.jobTemplate\./, 'jobTemplate.'],
    [/^spec\./, 'cronjob.'],
  ],
  Deployment: [
    [/^spec\.template\./, 'pod.'],
    [/^spec\./, 'deployment.'],
  ],
  Job: [
    [/^spec\.template\./, 'pod.'],
    [/^spec\./, 'job.'],
  ],
  Service: [[/^spec\./, 'service.']],
};

/** The kind-independent path the rules match: `spec.jobTemplate.spec.template.spec.containers[0].image` → `container.image`. */
export function canonicalPath(kind: ComparedKind, path: string): string {
  let p = path;
  for (const [re, to] of PREFIXES[kind]) {
    if (re.test(p)) {
      p = p.replace(re, to);
      break;
    }
  }
  return p.replace(/^pod\.spec\.containers\[0\]/, 'container');
}

function keyOf(path: string): string {
  const m = /\[("(?:[^"\\]|\\.)*"|[^\]]*)\](?!.*\[)/.exec(path);
  if (!m?.[1]) return '';
  return m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : m[1];
}

/** Classifies one difference by the table; a field no rule names is functional. */
export function classifyDifference(kind: ComparedKind, path: string, live: unknown, rendered: unknown): Classification {
  const canonical = canonicalPath(kind, path);
  const values: Values = { live, rendered, key: keyOf(canonical), kind };
  const rule = RULES.find((r) => r.path.test(canonical));
  if (rule === undefined) {
    return {
      class: 'functional',
      rule: 'unknown',
      reason: `${change(canonical, values)} (not a field known to be inert)`,
    };
  }
  return {
    class: typeof rule.class === 'function' ? rule.class(values) : rule.class,
    rule: rule.rule,
    reason: rule.reason(values),
    ...(rule.recreate ? { recreate: true as const } : {}),
  };
}
