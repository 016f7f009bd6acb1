import { join as shlexJoin } from 'shlex';
import {
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  formatCpu,
  formatMemory,
  JOB_NAME_MAX_LENGTH,
  JOB_NAME_PATTERN,
  parseCron,
  resolveImageReference,
  toolHome,
  type JobType,
} from '../jobs/index.js';
import { toolOfNamespace } from '../jobs/tenancy.js';
import { isObject, LABELS, MANAGED_BY_WEBSERVICE, type KObject } from '../runtime/index.js';
import type { RuntimeSettings } from '../runtime/index.js';
import { isBuildserviceImageName, type LoadEntry, type LoadKey } from './load-file.js';

/**
 * Hand-written ("foreign") CronJobs, Deployments and Jobs → the load entry that replaces them, best effort.
 * Whatever the jobs API cannot express is listed, per object, with the reason and what to do instead; it is never
 * dropped silently. A problem marked `attention` means the job will behave differently (or not run) unless a
 * person acts; the others only say what changes.
 */

export type ProblemCode =
  | 'several-containers'
  | 'init-containers'
  | 'custom-volume'
  | 'env-vars'
  | 'node-placement'
  | 'security-context'
  | 'pod-setting'
  | 'container-setting'
  | 'non-toolforge-image'
  | 'other-tool-image'
  | 'no-command'
  | 'shell-args'
  | 'working-dir'
  | 'concurrency-policy'
  | 'suspended'
  | 'time-zone'
  | 'restart-policy'
  | 'retry-capped'
  | 'timeout-one-off'
  | 'several-ports'
  | 'probe'
  | 'probe-timing'
  | 'resources'
  | 'name'
  | 'one-off'
  | 'schedule';

export interface Problem {
  code: ProblemCode;
  /** The workload field at fault, e.g. `spec.jobTemplate.spec.template.spec.volumes[0]`. */
  path: string;
  /** Why the jobs API cannot carry it as it is. */
  reason: string;
  /** What to do instead. */
  instead: string;
  attention: boolean;
}

export type ForeignResult =
  | {
      ok: true;
      name: string;
      tool: string;
      kind: 'CronJob' | 'Deployment' | 'Job';
      jobType: JobType;
      /** null when no entry can be written at all (the problems say why). */
      entry: LoadEntry | null;
      problems: Problem[];
      needsAttention: boolean;
    }
  | { ok: false; notAJob: true; reason: string }
  | { ok: false; notAJob: false; path: string; message: string };

const JOB_TYPE_BY_KIND = { CronJob: 'scheduled', Deployment: 'continuous', Job: 'one-off' } as const;

/** Toolforge NFS paths that `mount: all` provides; hostPath volumes under them need nothing else. */
const TOOLFORGE_NFS = ['/data/project', '/data/scratch', '/public/dumps', '/mnt/nfs', '/etc/wmcs-project', '/home'];

/** Values `kubectl get -o yaml` shows because the apiserver defaulted them: no hand-written intent. */
const POD_KEYS_OK = new Set([
  'containers',
  'initContainers',
  'volumes',
  'restartPolicy',
  'terminationGracePeriodSeconds',
  'dnsPolicy',
  'schedulerName',
  'securityContext',
  'serviceAccountName',
  'serviceAccount',
  'nodeSelector',
  'affinity',
  'tolerations',
  'topologySpreadConstraints',
  'enableServiceLinks',
  'preemptionPolicy',
  'priority',
]);
const CONTAINER_KEYS_OK = new Set([
  'name',
  'image',
  'imagePullPolicy',
  'command',
  'args',
  'workingDir',
  'env',
  'envFrom',
  'resources',
  'ports',
  'startupProbe',
  'livenessProbe',
  'readinessProbe',
  'securityContext',
  'volumeMounts',
  'terminationMessagePath',
  'terminationMessagePolicy',
]);

interface Ctx {
  readonly settings: RuntimeSettings;
  readonly kind: 'CronJob' | 'Deployment' | 'Job';
  readonly tool: string;
  readonly name: string;
  readonly spec: KObject;
  readonly owner: KObject;
  readonly ownerPath: string;
  readonly pod: KObject;
  readonly podPath: string;
  readonly container: KObject;
  readonly containerPath: string;
  readonly problems: Problem[];
  readonly entry: Partial<LoadEntry>;
}

function obj(v: unknown): KObject {
  return isObject(v) ? v : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined;
}

/** Something the jobs API cannot carry: a person has to act. */
function problem(ctx: Ctx, code: ProblemCode, path: string, reason: string, instead: string): void {
  ctx.problems.push({ code, path, reason, instead, attention: true });
}

/** A difference the entry handles itself: said, so nothing changes unnoticed. */
function info(ctx: Ctx, code: ProblemCode, path: string, reason: string, instead: string): void {
  ctx.problems.push({ code, path, reason, instead, attention: false });
}

function set<K extends LoadKey>(ctx: Ctx, key: K, value: LoadEntry[K]): void {
  (ctx.entry as Record<string, unknown>)[key] = value;
}

function checkPod(ctx: Ctx): void {
  const containers = list(ctx.pod['containers']);
  if (containers.length > 1) {
    const others = containers.slice(1).map((c) => String(obj(c)['name'] ?? '?'));
    problem(
      ctx,
      'several-containers',
      `${ctx.podPath}.containers`,
      `a job runs one container; only '${String(ctx.container['name'] ?? '?')}' is converted, ${others.map((o) => `'${o}'`).join(', ')} not`,
      'run each other container as its own job in the same jobs.yaml, or start it from the main command',
    );
  }
  if (list(ctx.pod['initContainers']).length > 0) {
    problem(
      ctx,
      'init-containers',
      `${ctx.podPath}.initContainers`,
      'jobs have no init containers',
      "run the init step at the start of the command, e.g. './prepare.sh && ./main.sh'",
    );
  }
  checkVolumes(ctx);
  for (const key of ['nodeSelector', 'affinity', 'tolerations'] as const) {
    if (ctx.pod[key] !== undefined && Object.keys(obj(ctx.pod[key])).length + list(ctx.pod[key]).length > 0)
      problem(
        ctx,
        'node-placement',
        `${ctx.podPath}.${key}`,
        'jobs-api chooses the nodes; a job cannot ask for nodes',
        'leave it out; if the job really needs special nodes, ask the Toolforge admins',
      );
  }
  if (Object.keys(obj(ctx.pod['securityContext'])).length > 0)
    problem(
      ctx,
      'security-context',
      `${ctx.podPath}.securityContext`,
      "jobs-api sets a fixed security context (the tool's own user, no privilege escalation)",
      'leave it out; files the job writes belong to the tool user',
    );
  const account = ctx.pod['serviceAccountName'];
  if (typeof account === 'string' && account !== 'default')
    problem(
      ctx,
      'pod-setting',
      `${ctx.podPath}.serviceAccountName`,
      `jobs run with the namespace's default service account, not '${account}'`,
      'ask the Toolforge admins if the job needs Kubernetes API access of its own',
    );
  for (const key of Object.keys(ctx.pod)
    .filter((k) => !POD_KEYS_OK.has(k))
    .sort())
    problem(
      ctx,
      'pod-setting',
      `${ctx.podPath}.${key}`,
      `the jobs API has no setting for the pod's '${key}'`,
      'leave it out, or ask the Toolforge admins whether the job can do without it',
    );
}

function isToolforgeNfs(path: unknown): boolean {
  return typeof path === 'string' && TOOLFORGE_NFS.some((p) => path === p || path.startsWith(`${p}/`));
}

function checkVolumes(ctx: Ctx): void {
  list(ctx.pod['volumes']).forEach((raw, i) => {
    const volume = obj(raw);
    const path = `${ctx.podPath}.volumes[${i}]`;
    const name = String(volume['name'] ?? '?');
    if (isObject(volume['hostPath']) && isToolforgeNfs(volume['hostPath']['path'])) {
      set(ctx, 'mount', 'all');
      return;
    }
    const [instead, what] = isObject(volume['secret'])
      ? ["store each secret value with 'toolforge envvars create NAME' (jobs get every envvar of the tool)", 'a Secret']
      : isObject(volume['configMap'])
        ? [
            "put the files in the tool's home directory (jobs see it with mount: all) and read them from there",
            'a ConfigMap',
          ]
        : isObject(volume['emptyDir'])
          ? ["use a directory under /tmp or the tool's home directory", 'an emptyDir']
          : [
              'leave it out, or ask the Toolforge admins',
              `a ${Object.keys(volume).filter((k) => k !== 'name')[0] ?? 'custom'} volume`,
            ];
    problem(ctx, 'custom-volume', path, `volume '${name}' is ${what}: jobs only get the Toolforge NFS mounts`, instead);
  });
}

function checkContainer(ctx: Ctx): void {
  const env = list(ctx.container['env']).map((e) => obj(e));
  if (env.length > 0) {
    const names = env.map((e) => String(e['name'] ?? '?'));
    problem(
      ctx,
      'env-vars',
      `${ctx.containerPath}.env`,
      `environment variables ${names.map((n) => `'${n}'`).join(', ')} cannot be set per job`,
      `create them once for the tool: ${names.map((n) => `'toolforge envvars create ${n}'`).join(', ')}; every job of the tool gets them`,
    );
  }
  if (list(ctx.container['envFrom']).length > 0)
    problem(
      ctx,
      'env-vars',
      `${ctx.containerPath}.envFrom`,
      'environment variables from ConfigMaps or Secrets cannot be set per job',
      "create each variable with 'toolforge envvars create NAME'; every job of the tool gets them",
    );
  if (Object.keys(obj(ctx.container['securityContext'])).length > 0)
    problem(
      ctx,
      'security-context',
      `${ctx.containerPath}.securityContext`,
      "jobs-api sets a fixed security context (the tool's own user, no privilege escalation)",
      'leave it out',
    );
  for (const key of Object.keys(ctx.container)
    .filter((k) => !CONTAINER_KEYS_OK.has(k))
    .sort())
    problem(
      ctx,
      'container-setting',
      `${ctx.containerPath}.${key}`,
      `the jobs API has no setting for the container's '${key}'`,
      'leave it out',
    );
}

function readImage(ctx: Ctx): string {
  const path = `${ctx.containerPath}.image`;
  const url = typeof ctx.container['image'] === 'string' ? ctx.container['image'] : '';
  const resolved = resolveImageReference(url, ctx.settings);
  if (resolved.match === 'prebuilt') return resolved.image.short_name;
  if (resolved.match === 'harbor') {
    const tag = resolved.image.tag || 'latest';
    const name = `${resolved.image.path ?? ''}:${tag}${resolved.image.digest ? `@${resolved.image.digest}` : ''}`;
    if (!(resolved.image.path ?? '').startsWith(`tool-${ctx.tool}/`))
      problem(
        ctx,
        'other-tool-image',
        path,
        `'${url}' is a build service image of another project than tool-${ctx.tool}`,
        `build the image for this tool ('toolforge build start …' makes tool-${ctx.tool}/<name>:latest) unless jobs-api lets the tool run it`,
      );
    return name;
  }
  problem(
    ctx,
    'non-toolforge-image',
    path,
    `'${url}' is not a Toolforge image: jobs-api runs only the prebuilt images and the tool's build service images`,
    `pick a prebuilt image ('toolforge jobs images') or build one from the tool's repository ('toolforge build start URL', then image tool-${ctx.tool}/<name>:latest)`,
  );
  return url;
}

const SHELLS = new Set(['sh', 'bash', '/bin/sh', '/bin/bash', '/usr/bin/sh', '/usr/bin/bash']);

function readCommand(ctx: Ctx, buildservice: boolean): string | null {
  const command = strings(ctx.container['command']) ?? [];
  const args = strings(ctx.container['args']) ?? [];
  const full = [...command, ...args];
  // jobs-api runs a build service job's command through 'launcher' itself
  const argv = buildservice && full[0] === 'launcher' ? full.slice(1) : full;
  if (argv.length === 0) {
    problem(
      ctx,
      'no-command',
      `${ctx.containerPath}.command`,
      "the container runs the image's own entrypoint; a job needs its command written out",
      "write the command the image runs in 'command' (for a build service image, the Procfile process name, e.g. 'web')",
    );
    return null;
  }
  let cmd = shlexJoin(argv);
  const first = argv[0] ?? '';
  if (SHELLS.has(first) && argv[1] === '-c' && argv.length >= 3) {
    const at = argv[2] === '--' ? 3 : 2;
    cmd = argv[at] ?? '';
    if (argv.length > at + 1)
      problem(
        ctx,
        'shell-args',
        `${ctx.containerPath}.args`,
        `the arguments after the '-c' script (${shlexJoin(argv.slice(at + 1))}) are positional parameters of the shell`,
        'put them into the command text, where the script uses $0, $1, …',
      );
  }
  return inWorkingDir(ctx, cmd);
}

/** Jobs start in the tool's home: another working directory becomes a 'cd' in front of the command. */
function inWorkingDir(ctx: Ctx, command: string): string {
  let cmd = command;
  const dir = ctx.container['workingDir'];
  const home = toolHome(ctx.tool, ctx.settings);
  if (typeof dir === 'string' && dir !== '' && dir !== home) {
    cmd = `cd ${shlexJoin([dir])} && ${cmd}`;
    info(
      ctx,
      'working-dir',
      `${ctx.containerPath}.workingDir`,
      `jobs start in the tool's home (${home}), not in '${dir}'`,
      "the command starts with 'cd' into it (done in the entry)",
    );
  }
  return cmd;
}

function quantity(value: unknown): string | undefined {
  return typeof value === 'number' ? String(value) : typeof value === 'string' ? value : undefined;
}

function readResources(ctx: Ctx): void {
  const path = `${ctx.containerPath}.resources`;
  const resources = obj(ctx.container['resources']);
  const limits = obj(resources['limits']);
  const requests = obj(resources['requests']);
  const memory = quantity(limits['memory']) ?? quantity(requests['memory']);
  const cpu = quantity(limits['cpu']) ?? quantity(requests['cpu']);
  const mem = memory === undefined ? null : formatMemory(memory);
  if (mem !== null && mem !== formatMemory(DEFAULT_MEMORY)) set(ctx, 'mem', mem);
  const cores = cpu === undefined ? null : formatCpu(cpu);
  if (cores !== null && cores !== formatCpu(DEFAULT_CPU)) set(ctx, 'cpu', cores);
  const other = [...Object.keys(limits), ...Object.keys(requests)].filter((k) => k !== 'cpu' && k !== 'memory');
  if (other.length > 0)
    problem(
      ctx,
      'resources',
      path,
      `jobs only set cpu and memory, not ${[...new Set(other)].map((o) => `'${o}'`).join(', ')}`,
      'leave it out',
    );
  if (memory !== undefined || cpu !== undefined)
    info(
      ctx,
      'resources',
      path,
      "jobs-api derives requests and limits from one value each: 'mem' is the memory limit, 'cpu' the cpu request and limit",
      'nothing: the entry carries the limits',
    );
}

function readRetry(ctx: Ctx): void {
  const path = `${ctx.ownerPath}.backoffLimit`;
  const backoff = ctx.owner['backoffLimit'];
  // Kubernetes defaults backoffLimit to 6
  const retry = typeof backoff === 'number' ? backoff : 6;
  if (retry > 5)
    info(
      ctx,
      'retry-capped',
      path,
      `failed runs are retried ${retry} times; a job allows at most 5`,
      "nothing: the entry says 'retry: 5'",
    );
  if (retry > 0) set(ctx, 'retry', Math.min(retry, 5));
  const restart = ctx.pod['restartPolicy'];
  if (restart === 'OnFailure')
    info(
      ctx,
      'restart-policy',
      `${ctx.podPath}.restartPolicy`,
      'jobs-api retries a failed run in a new pod (restartPolicy Never) instead of restarting the container',
      'nothing, unless the command relies on files left in the container',
    );
}

function readSchedule(ctx: Ctx): void {
  const schedule = ctx.spec['schedule'];
  if (typeof schedule !== 'string') {
    problem(ctx, 'schedule', 'spec.schedule', 'the CronJob has no schedule', "write the schedule in 'schedule'");
    return;
  }
  const parsed = parseCron(schedule, ctx.tool, ctx.name);
  if (!parsed.ok)
    problem(
      ctx,
      'schedule',
      'spec.schedule',
      parsed.problem.message,
      'write a schedule jobs-api accepts (five fields or @daily, …)',
    );
  else if (schedule.startsWith('@'))
    info(
      ctx,
      'schedule',
      'spec.schedule',
      `Kubernetes runs '${schedule}' at midnight (or the hour's start); jobs-api runs it at a fixed time of its own for this job`,
      `nothing, unless the exact time matters: then write the five fields instead of '${schedule}'`,
    );
  set(ctx, 'schedule', schedule);
  const policy = ctx.spec['concurrencyPolicy'] ?? 'Allow';
  if (policy !== 'Forbid')
    problem(
      ctx,
      'concurrency-policy',
      'spec.concurrencyPolicy',
      `'${String(policy)}': jobs-api always uses Forbid, so a run is skipped while the previous one is still running`,
      'make sure one run finishes before the next is due, or split the work',
    );
  if (ctx.spec['suspend'] === true)
    problem(
      ctx,
      'suspended',
      'spec.suspend',
      'the CronJob is suspended; jobs-api cannot create a suspended job',
      'leave the job out of jobs.yaml if it is no longer needed, and delete the CronJob',
    );
  if (typeof ctx.spec['timeZone'] === 'string')
    problem(
      ctx,
      'time-zone',
      'spec.timeZone',
      `jobs run on UTC; this CronJob uses '${ctx.spec['timeZone']}'`,
      'convert the schedule to UTC',
    );
  const deadline = ctx.owner['activeDeadlineSeconds'];
  if (typeof deadline === 'number' && deadline > 0) set(ctx, 'timeout', deadline);
}

interface ProbeAction {
  kind: 'exec' | 'http' | 'tcp' | 'other';
  value: string;
  port?: unknown;
}

function probeAction(probe: KObject): ProbeAction {
  const exec = strings(obj(probe['exec'])['command']);
  if (exec) {
    const script =
      SHELLS.has(exec[0] ?? '') && exec[1] === '-c' ? (exec[exec[2] === '--' ? 3 : 2] ?? '') : shlexJoin(exec);
    return { kind: 'exec', value: script };
  }
  if (isObject(probe['httpGet']))
    return { kind: 'http', value: String(probe['httpGet']['path'] ?? '/'), port: probe['httpGet']['port'] };
  if (isObject(probe['tcpSocket'])) return { kind: 'tcp', value: '', port: probe['tcpSocket']['port'] };
  return { kind: 'other', value: Object.keys(probe).join(',') };
}

/** A probe on a named container port, as the port's number. */
function namedPort(ctx: Ctx, action: ProbeAction): ProbeAction {
  if (typeof action.port !== 'string') return action;
  const match = list(ctx.container['ports']).find((p) => obj(p)['name'] === action.port);
  const number = obj(match)['containerPort'];
  return typeof number === 'number' ? { ...action, port: number } : action;
}

function readProbes(ctx: Ctx, port: number | undefined): void {
  const names = ['startupProbe', 'livenessProbe', 'readinessProbe'].filter((p) => isObject(ctx.container[p]));
  const first = names[0];
  if (first === undefined) return;
  const path = `${ctx.containerPath}.${first}`;
  const action = namedPort(ctx, probeAction(obj(ctx.container[first])));
  const differing = names.filter(
    (n) => JSON.stringify(namedPort(ctx, probeAction(obj(ctx.container[n])))) !== JSON.stringify(action),
  );
  for (const n of differing)
    problem(
      ctx,
      'probe',
      `${ctx.containerPath}.${n}`,
      `a job has one health check; this ${n} differs from the ${first} that is converted`,
      'fold both checks into one script for health-check-script',
    );
  if (action.kind === 'exec') set(ctx, 'health-check-script', action.value);
  else if (action.kind === 'http' && port !== undefined && (action.port === port || action.port === undefined))
    set(ctx, 'health-check-http', action.value);
  else if (action.kind === 'tcp' && port !== undefined) {
    // jobs-api probes a tcp port by itself: nothing to write
  } else
    problem(
      ctx,
      'probe',
      path,
      action.kind === 'other'
        ? `a probe of kind ${action.value} is not a jobs-api health check`
        : `the ${action.kind} probe checks port ${String(action.port)}, not the job's port`,
      "use 'health-check-script' with a command that checks the same thing",
    );
  info(
    ctx,
    'probe-timing',
    path,
    'jobs-api uses its own probe timings (startup: every 1 s up to 120 times; liveness: every 10 s, 3 failures)',
    'nothing, unless the job needs longer to start',
  );
}

function readContinuous(ctx: Ctx): void {
  set(ctx, 'continuous', true);
  const replicas = ctx.spec['replicas'];
  if (typeof replicas === 'number' && replicas !== 1) set(ctx, 'replicas', replicas);
  const ports = list(ctx.container['ports']).map((p) => obj(p));
  let port: number | undefined;
  const firstPort = ports[0];
  if (firstPort !== undefined && typeof firstPort['containerPort'] === 'number') {
    port = firstPort['containerPort'];
    const protocol = String(firstPort['protocol'] ?? 'TCP').toLowerCase();
    set(ctx, 'port', protocol === 'udp' ? `${port}/udp` : port);
    if (protocol !== 'tcp' && protocol !== 'udp')
      problem(
        ctx,
        'several-ports',
        `${ctx.containerPath}.ports[0].protocol`,
        `protocol '${protocol}' is not tcp or udp`,
        'use tcp or udp',
      );
  }
  if (ports.length > 1)
    problem(
      ctx,
      'several-ports',
      `${ctx.containerPath}.ports`,
      `a job exposes one port; ${ports
        .slice(1)
        .map((p) => String(p['containerPort']))
        .join(', ')} would not be reachable`,
      'serve everything on one port, or run a second continuous job for the other port',
    );
  readProbes(ctx, port);
}

function checkName(ctx: Ctx): void {
  if (JOB_NAME_PATTERN.test(ctx.name) && ctx.name.length <= JOB_NAME_MAX_LENGTH) return;
  problem(
    ctx,
    'name',
    'metadata.name',
    `'${ctx.name}' is not a valid job name (lower case letters, digits, '-' and '.', at most ${JOB_NAME_MAX_LENGTH} characters)`,
    "choose another 'name' in jobs.yaml",
  );
}

function context(root: KObject, settings: RuntimeSettings): Ctx | { path: string; message: string } {
  const kind = root['kind'] as 'CronJob' | 'Deployment' | 'Job';
  const metadata = obj(root['metadata']);
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : '';
  const namespace = typeof metadata['namespace'] === 'string' ? metadata['namespace'] : '';
  const tool = toolOfNamespace(namespace, settings.toolNamespacePrefix, { jobsApiFallback: true }) ?? '';
  if (name === '') return { path: 'metadata.name', message: 'is missing' };
  if (tool === '') return { path: 'metadata.namespace', message: `must be 'tool-<tool>', got '${namespace}'` };
  const spec = obj(root['spec']);
  const ownerPath = kind === 'CronJob' ? 'spec.jobTemplate.spec' : 'spec';
  const owner = kind === 'CronJob' ? obj(obj(spec['jobTemplate'])['spec']) : spec;
  const podPath = `${ownerPath}.template.spec`;
  const pod = obj(obj(owner['template'])['spec']);
  const containers = list(pod['containers']);
  if (containers.length === 0 || !isObject(containers[0]))
    return { path: `${podPath}.containers`, message: 'must have at least one container' };
  const base = { settings, kind, tool, name, spec, owner, ownerPath, pod, podPath };
  return { ...base, container: containers[0], containerPath: `${podPath}.containers[0]`, problems: [], entry: {} };
}

function notAJob(root: KObject): string | undefined {
  const metadata = obj(root['metadata']);
  const labels = obj(metadata['labels']);
  if (labels[LABELS.managedBy] === MANAGED_BY_WEBSERVICE) return `${String(root['kind'])} managed by webservice`;
  if (root['kind'] === 'Job' && list(metadata['ownerReferences']).some((o) => obj(o)['kind'] === 'CronJob'))
    return 'a run of a CronJob, not a job definition';
  if (!(String(root['kind']) in JOB_TYPE_BY_KIND)) return `kind ${String(root['kind'])} is not a job`;
  return undefined;
}

/** Converts one hand-written workload. Never throws; objects that are not jobs say why. */
export function convertForeign(input: unknown, settings: RuntimeSettings): ForeignResult {
  if (!isObject(input)) return { ok: false, notAJob: false, path: '', message: 'not a Kubernetes object' };
  const skip = notAJob(input);
  if (skip !== undefined) return { ok: false, notAJob: true, reason: skip };
  const ctx = context(input, settings);
  if (!('problems' in ctx)) return { ok: false, notAJob: false, ...ctx };
  checkName(ctx);
  checkPod(ctx);
  checkContainer(ctx);
  const image = readImage(ctx);
  const buildservice = isBuildserviceImageName(image);
  const command = readCommand(ctx, buildservice);
  readResources(ctx);
  const jobType = JOB_TYPE_BY_KIND[ctx.kind];
  if (jobType === 'continuous') readContinuous(ctx);
  else readRetry(ctx);
  if (jobType === 'scheduled') readSchedule(ctx);
  if (jobType === 'one-off') {
    const deadline = ctx.owner['activeDeadlineSeconds'];
    if (typeof deadline === 'number')
      problem(
        ctx,
        'timeout-one-off',
        `${ctx.ownerPath}.activeDeadlineSeconds`,
        `one-off jobs have no timeout; this Job stops after ${deadline} s`,
        `add it to the command: 'timeout ${deadline} <command>'`,
      );
    problem(
      ctx,
      'one-off',
      '',
      "a one-off job: 'toolforge jobs load' does not create one-off jobs",
      "if it must run again, use 'toolforge jobs run NAME --image … --command …' with the entry's values",
    );
  }
  // hand-written pods log to kubectl logs, not to files: the same is `no-filelog` on a standard image; and a
  // standard image always gets the NFS mounts ('mount: all' is only written for a build service image)
  if (!buildservice) {
    set(ctx, 'no-filelog', true);
    delete (ctx.entry as Record<string, unknown>)['mount'];
  }
  const entry = command === null ? null : ({ name: ctx.name, command, image, ...ctx.entry } as LoadEntry);
  return {
    ok: true,
    name: ctx.name,
    tool: ctx.tool,
    kind: ctx.kind,
    jobType,
    entry,
    problems: ctx.problems,
    needsAttention: ctx.problems.some((p) => p.attention),
  };
}
