import { join as shlexJoin } from 'shlex';
import {
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  formatCpu,
  formatMemory,
  parseCron,
  resolveImageReference,
  toolHome,
} from '../jobs/index.js';
import { isObject, type KObject } from '../runtime/object.js';
import { info, list, obj, problem, set, strings, type Ctx } from './foreign-context.js';

/** What a hand-written workload runs, and how, as the fields of its load entry (image, command, resources, …). */

export function readImage(ctx: Ctx): string {
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

export function readCommand(ctx: Ctx, buildservice: boolean): string | null {
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

export function readResources(ctx: Ctx): void {
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

export function readRetry(ctx: Ctx): void {
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

export function readSchedule(ctx: Ctx): void {
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

export function readContinuous(ctx: Ctx): void {
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
