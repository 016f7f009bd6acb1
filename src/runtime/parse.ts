import { join as shlexJoin } from 'shlex';
import {
  cronFromRuntime,
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  EMAIL_OPTIONS,
  formatCpu,
  formatCron,
  formatMemory,
  imageUrl,
  JOB_DEFAULT_CPU,
  MOUNT_OPTIONS,
  parseCron,
  PORT_PROTOCOLS,
  quantitiesEqual,
  resolveImageReference,
  validateJob,
  type CronSchedule,
  type EmailOption,
  type HealthCheck,
  type Job,
  type JobImage,
  type JobType,
  type MountOption,
  type PortProtocol,
  type ValidationIssue,
} from '../jobs/index.js';
import { parseCommand, stripLauncher, type ParsedCommand } from './command.js';
import { detectEra, versionOf, type EraFeature, type WorkloadEra } from './eras.js';
import { DEFAULT_TOOL_NAMESPACE_PREFIX, toolOfNamespace } from '../jobs/tenancy.js';
import { ok, problem } from '../errors.js';
import type { Result } from '../errors.js';
import { ownerCronJob } from './facts.js';
import type { WorkloadFacts } from './facts.js';
import { workloadKindOf } from './kinds.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK, WORKLOAD_ANNOTATIONS } from './labels.js';
import { podView } from './pod.js';
import {
  child,
  FieldError,
  isObject,
  optionalInteger,
  optionalObject,
  optionalString,
  requireArray,
  requireObject,
  requireString,
  stringList,
  stringMap,
  type KObject,
} from './object.js';
import type { RuntimeSettings } from './settings.js';

export interface ParseOptions {
  /** The job's Service, if one was found: only cross-checked (jobs-api ignores it when reading a job). */
  service?: unknown;
  /**
   * Emit exactly the fields jobs-api's own parser sets. By default a standard-image job whose workload has no
   * filelog label gets an explicit `filelog: false`: jobs-api's parser leaves it unset, and jobs-api then resolves
   * an unset filelog to true, so a CR written from its field set would turn file logging on at the next render.
   */
  jobsApiFieldsOnly?: boolean;
}

export type ParseWarningCode =
  | 'invisible-to-jobs-api'
  | 'jobs-api-cannot-parse'
  | 'filelog-made-explicit'
  | 'unknown-image'
  | 'image-registry-alias'
  | 'image-variant'
  | 'launcher-added-on-render'
  | 'command-unknown'
  | 'mount-label-missing'
  | 'no-resources'
  | 'cpu-old-default'
  | 'name-label-mismatch'
  | 'created-by-mismatch'
  | 'extra-containers'
  | 'raw-macro-schedule'
  | 'no-cron-annotation'
  | 'schedule-mismatch'
  | 'probe-not-parsed'
  | 'service-mismatch'
  | 'validation';

export interface ParseWarning {
  code: ParseWarningCode;
  /** The workload field the warning is about. */
  path: string;
  message: string;
}

/** A workload read as a job: the job, the era of the object, and what a reader should know about it. */
export interface ParsedWorkload {
  job: Job;
  era: WorkloadEra;
  warnings: ParseWarning[];
}

/** The parsed workload, or the problem, its path naming the workload field at fault. */
export type ParseResult = Result<ParsedWorkload>;

interface Ctx {
  readonly settings: RuntimeSettings;
  readonly options: ParseOptions;
  readonly kind: string;
  readonly jobType: JobType;
  readonly name: string;
  readonly tool: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: KObject;
  /** The object holding `template` and `backoffLimit`: `spec`, or `spec.jobTemplate.spec` of a CronJob. */
  readonly podOwner: KObject;
  readonly podOwnerPath: string;
  readonly podSpec: KObject;
  readonly container: KObject;
  readonly containerPath: string;
  readonly warnings: ParseWarning[];
  readonly features: Set<EraFeature>;
}

function labelPath(key: string): string {
  return child('metadata.labels', key);
}

function warn(ctx: Ctx, code: ParseWarningCode, path: string, message: string): void {
  ctx.warnings.push({ code, path, message });
}

function readContext(obj: unknown, settings: RuntimeSettings, options: ParseOptions, facts?: WorkloadFacts): Ctx {
  const root = requireObject(obj, '');
  const kind = requireString(root['kind'], 'kind');
  const jobType = workloadKindOf(kind)?.jobType;
  if (jobType === undefined) throw new FieldError('kind', `must be CronJob, Deployment or Job, got '${kind}'`);
  const metadata = requireObject(root['metadata'], 'metadata');
  const name = requireString(metadata['name'], 'metadata.name');
  const namespace = requireString(metadata['namespace'], 'metadata.namespace');
  const prefix = settings.toolNamespacePrefix ?? DEFAULT_TOOL_NAMESPACE_PREFIX;
  const tool = facts ? facts.namespaceTool : toolOfNamespace(namespace, prefix, { jobsApiFallback: true });
  if (tool === undefined) throw new FieldError('metadata.namespace', `must be '${prefix}<tool>', got '${namespace}'`);
  const cronJob = facts ? facts.cronJobOwner : kind === 'Job' ? ownerCronJob(metadata) : undefined;
  if (cronJob !== undefined) {
    throw new FieldError('metadata.ownerReferences', `this Job is a run of CronJob '${cronJob}', not a job definition`);
  }
  const labels = stringMap(metadata['labels'], 'metadata.labels');
  if (labels[LABELS.managedBy] !== MANAGED_BY_JOBS_FRAMEWORK) {
    throw new FieldError(
      labelPath(LABELS.managedBy),
      `must be '${MANAGED_BY_JOBS_FRAMEWORK}': not an object written by jobs-api`,
    );
  }
  const view = podView(root, 'exact');
  if (!view.ok) throw new FieldError(view.problem.path, view.problem.message);
  const { spec, podOwner, podSpec, container, paths } = view.value;
  return {
    settings,
    options,
    kind,
    jobType,
    name,
    tool,
    labels,
    annotations: stringMap(metadata['annotations'], 'metadata.annotations'),
    spec,
    podOwner,
    podOwnerPath: paths.podOwner,
    podSpec,
    container,
    containerPath: paths.container,
    warnings: [],
    features: new Set(),
  };
}

function readImage(ctx: Ctx): JobImage {
  const path = `${ctx.containerPath}.image`;
  const url = requireString(ctx.container['image'], path);
  const resolved = resolveImageReference(url, ctx.settings);
  if (resolved.match === 'unknown') {
    warn(
      ctx,
      'unknown-image',
      path,
      `'${url}' is neither a prebuilt image of the image config nor a Harbor image; jobs-api stores it as a non-existing image`,
    );
  }
  if (resolved.hostAlias !== undefined) {
    warn(
      ctx,
      'image-registry-alias',
      path,
      `registry '${resolved.hostAlias}' taken as '${resolved.image.host ?? ''}' for prebuilt image '${resolved.image.short_name}'`,
    );
  }
  if (resolved.match === 'prebuilt' && imageUrl(resolved.image) !== url) {
    warn(
      ctx,
      'image-variant',
      path,
      `jobs-api renders '${resolved.image.short_name}' as '${imageUrl(resolved.image)}'; this workload runs '${url}'`,
    );
  }
  return resolved.image;
}

function readCommand(ctx: Ctx, version: number, buildservice: boolean): ParsedCommand {
  const commandPath = `${ctx.containerPath}.command`;
  const command = stringList(ctx.container['command'], commandPath);
  const rawArgs = ctx.container['args'];
  const args = rawArgs === undefined || rawArgs === null ? [] : stringList(rawArgs, `${ctx.containerPath}.args`);
  const result = parseCommand({ labels: ctx.labels, jobName: ctx.name, command, args }, version);
  if (!result.ok)
    throw new FieldError(
      result.problem.path === 'args' ? `${ctx.containerPath}.args` : commandPath,
      result.problem.message,
    );
  const parsed = result.value.command;
  if (result.value.jobsApiFails) {
    warn(
      ctx,
      'jobs-api-cannot-parse',
      commandPath,
      "jobs-api's parser fails on this command layout (no ' 1>' redirect); the command is taken as it runs",
    );
  }
  if (parsed.cmd === 'unknown')
    warn(ctx, 'command-unknown', commandPath, "the command is empty; jobs-api records it as 'unknown'");
  recordCommandFeatures(ctx, parsed, buildservice, commandPath);
  return {
    ...parsed,
    cmd: buildservice ? stripLauncher(parsed.cmd) : parsed.cmd,
  };
}

function recordCommandFeatures(ctx: Ctx, parsed: ParsedCommand, buildservice: boolean, commandPath: string): void {
  if (parsed.layout === 'shell-less') ctx.features.add('shell-less');
  if (parsed.layout === 'split-args') ctx.features.add('split-args');
  if (parsed.filelog) ctx.features.add('filelog');
  for (const p of [parsed.filelog_stdout, parsed.filelog_stderr]) {
    if (p !== null && p !== '/dev/null')
      ctx.features.add(p.startsWith('/') ? 'absolute-log-paths' : 'relative-log-paths');
  }
  if (!buildservice) return;
  if (parsed.cmd.startsWith('launcher ')) ctx.features.add('launcher-prefix');
  else
    warn(
      ctx,
      'launcher-added-on-render',
      commandPath,
      "this buildservice command runs without 'launcher'; jobs-api adds 'launcher ' when it renders the job again",
    );
}

function enumLabel<T extends string>(ctx: Ctx, key: string, allowed: readonly T[], fallback: T): T {
  const value = ctx.labels[key] ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new FieldError(labelPath(key), `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${value}'`);
  }
  return value as T;
}

function quantity(value: string, path: string, format: (q: string) => string | null): string {
  const formatted = format(value);
  if (formatted === null) throw new FieldError(path, `'${value}' is not a Kubernetes quantity`);
  return formatted;
}

interface Resources {
  memory: string;
  cpu: string;
}

/** Memory is the limit; cpu is "default" when limit = default limit and request = 100m, else the limit. */
function readResources(ctx: Ctx): Resources {
  const path = `${ctx.containerPath}.resources`;
  const resources = optionalObject(ctx.container['resources'], path) ?? {};
  const limits = optionalObject(resources['limits'], `${path}.limits`) ?? {};
  const requests = optionalObject(resources['requests'], `${path}.requests`) ?? {};
  const memoryLimit = optionalString(stringOrNumber(limits['memory']), `${path}.limits.memory`);
  const cpuLimit = optionalString(stringOrNumber(limits['cpu']), `${path}.limits.cpu`);
  const cpuRequest = optionalString(stringOrNumber(requests['cpu']), `${path}.requests.cpu`);
  if (memoryLimit === undefined && cpuLimit === undefined && cpuRequest === undefined) {
    warn(
      ctx,
      'no-resources',
      path,
      'no cpu or memory set: taken as the defaults; jobs-api sets requests and limits when it renders the job again',
    );
  }
  const memory =
    memoryLimit === undefined ? DEFAULT_MEMORY : quantity(memoryLimit, `${path}.limits.memory`, formatMemory);
  const limit = cpuLimit ?? ctx.settings.defaultCpuLimit;
  const request = cpuRequest ?? JOB_DEFAULT_CPU;
  quantity(limit, `${path}.limits.cpu`, formatCpu);
  quantity(request, `${path}.requests.cpu`, formatCpu);
  if (quantitiesEqual(limit, '500m') && quantitiesEqual(request, '250m')) {
    warn(
      ctx,
      'cpu-old-default',
      `${path}.limits.cpu`,
      `cpu 500m/250m was the default of early jobs-api; jobs-api reads it as an explicit cpu 0.5 (the admin rewrite to ${ctx.settings.defaultCpuLimit}/100m only covered 500m/500m objects)`,
    );
  }
  const isDefault = quantitiesEqual(limit, ctx.settings.defaultCpuLimit) && quantitiesEqual(request, JOB_DEFAULT_CPU);
  return {
    memory,
    cpu: isDefault ? DEFAULT_CPU : quantity(limit, `${path}.limits.cpu`, formatCpu),
  };
}

function stringOrNumber(value: unknown): unknown {
  return typeof value === 'number' ? String(value) : value;
}

function checkMetadataLabels(ctx: Ctx, era: WorkloadEra['id']): void {
  if (era === 'pre-release') {
    warn(
      ctx,
      'invisible-to-jobs-api',
      'metadata.labels',
      "pre-release object (component 'tool' or no 'toolforge' label): jobs-api's label selector never finds it",
    );
  }
  const nameLabel = ctx.labels[LABELS.name];
  if (nameLabel !== undefined && nameLabel !== ctx.name) {
    warn(
      ctx,
      'name-label-mismatch',
      labelPath(LABELS.name),
      `is '${nameLabel}' but the object is named '${ctx.name}': jobs-api looks the job up by the label`,
    );
  }
  const createdBy = ctx.labels[LABELS.createdBy];
  if (createdBy !== undefined && createdBy !== ctx.tool) {
    warn(
      ctx,
      'created-by-mismatch',
      labelPath(LABELS.createdBy),
      `is '${createdBy}' but the namespace belongs to tool '${ctx.tool}': jobs-api's label selector does not find this object`,
    );
  }
  if (ctx.labels[LABELS.mount] !== undefined) ctx.features.add('mount-label');
  if (ctx.labels[LABELS.emails] !== undefined) ctx.features.add('emails-label');
}

function readMount(ctx: Ctx, image: JobImage): MountOption | undefined {
  const mount = enumLabel(ctx, LABELS.mount, MOUNT_OPTIONS, 'none');
  if (ctx.labels[LABELS.mount] === undefined && image.type === 'buildservice') {
    warn(
      ctx,
      'mount-label-missing',
      labelPath(LABELS.mount),
      "no mount label: jobs-api reads mount 'none', but volume-admission mounted everything ('all') for these pods",
    );
  }
  if (mount === 'none') return undefined;
  // jobs-api treats 'all' on a standard image as the image default, i.e. not set
  if (mount === 'all' && image.type === 'standard') return undefined;
  return mount;
}

function readFeatures(ctx: Ctx): void {
  const env = Array.isArray(ctx.container['env']) ? ctx.container['env'] : [];
  const volumes = Array.isArray(ctx.podSpec['volumes']) ? ctx.podSpec['volumes'] : [];
  if (
    env.some((e) => isObject(e) && e['name'] === 'HOME') ||
    volumes.some((v) => isObject(v) && v['name'] === 'home')
  ) {
    ctx.features.add('home-volume');
  }
  if (env.some((e) => isObject(e) && e['name'] === 'PORT')) ctx.features.add('port-env');
  if (ctx.container['name'] !== 'job') ctx.features.add('container-named-after-job');
  const containers = ctx.podSpec['containers'];
  if (Array.isArray(containers) && containers.length > 1) {
    warn(
      ctx,
      'extra-containers',
      `${ctx.podOwnerPath}.template.spec.containers`,
      'has more than one container: only the first is part of the job',
    );
  }
}

function readSchedule(ctx: Ctx): CronSchedule {
  const actualText = requireString(ctx.spec['schedule'], 'spec.schedule');
  const annotationPath = child('metadata.annotations', WORKLOAD_ANNOTATIONS.cronExpression);
  const configuredText = ctx.annotations[WORKLOAD_ANNOTATIONS.cronExpression] ?? actualText;
  const actual = parseCron(actualText, ctx.tool, ctx.name);
  if (!actual.ok) throw new FieldError('spec.schedule', actual.problem.message);
  const configured = configuredText === actualText ? actual : parseCron(configuredText, ctx.tool, ctx.name);
  if (!configured.ok) throw new FieldError(annotationPath, configured.problem.message);
  if (actualText.startsWith('@')) {
    ctx.features.add('raw-macro-schedule');
    warn(
      ctx,
      'raw-macro-schedule',
      'spec.schedule',
      `Kubernetes runs '${actualText}' at its standard time; jobs-api reads it as '${formatCron(actual.value)}' and moves it there on the next render (T391786)`,
    );
  }
  if (ctx.annotations[WORKLOAD_ANNOTATIONS.cronExpression] === undefined) {
    warn(
      ctx,
      'no-cron-annotation',
      annotationPath,
      'no configured schedule (objects before 2023-06): the schedule text is taken from spec.schedule, an @-macro the user gave is lost',
    );
  } else {
    ctx.features.add('cron-annotation');
    if (formatCron(configured.value) !== formatCron(actual.value)) {
      warn(
        ctx,
        'schedule-mismatch',
        'spec.schedule',
        `'${actualText}' is not what the configured '${configuredText}' gives ('${formatCron(configured.value)}'): the CronJob was changed outside jobs-api`,
      );
    }
  }
  const schedule = cronFromRuntime(formatCron(actual.value), configured.value.text);
  if (!schedule.ok) throw new FieldError('spec.schedule', schedule.problem.message);
  return schedule.value;
}

function probeScript(command: readonly string[]): string {
  if (command[0] === '/bin/sh' && command[1] === '-c') return command[command[2] === '--' ? 3 : 2] ?? '';
  if (command[0] === 'launcher') return shlexJoin(command.slice(1));
  return shlexJoin(command);
}

function readHealthCheck(ctx: Ctx): HealthCheck | undefined {
  const path = `${ctx.containerPath}.startupProbe`;
  const probe = optionalObject(ctx.container['startupProbe'], path);
  if (probe === undefined) return undefined;
  const exec = optionalObject(probe['exec'], `${path}.exec`);
  if (exec !== undefined) {
    ctx.features.add('health-check');
    return {
      type: 'script',
      script: probeScript(stringList(exec['command'], `${path}.exec.command`)),
    };
  }
  const http = optionalObject(probe['httpGet'], `${path}.httpGet`);
  if (http !== undefined) {
    ctx.features.add('health-check');
    return {
      type: 'http',
      path: requireString(http['path'], `${path}.httpGet.path`),
    };
  }
  if (probe['tcpSocket'] !== undefined) ctx.features.add('implicit-tcp-probe');
  else warn(ctx, 'probe-not-parsed', path, 'neither exec, httpGet nor tcpSocket: not a jobs-api health check');
  return undefined;
}

interface PortSpec {
  port?: number;
  protocol?: PortProtocol;
}

function readPort(ctx: Ctx): PortSpec {
  const path = `${ctx.containerPath}.ports`;
  const ports = ctx.container['ports'];
  if (ports === undefined || ports === null) return {};
  const list = requireArray(ports, path);
  if (list.length === 0) return {};
  const first = requireObject(list[0], `${path}[0]`);
  const port = optionalInteger(first['containerPort'], `${path}[0].containerPort`);
  const rawProtocol = optionalString(first['protocol'], `${path}[0].protocol`)?.toLowerCase() ?? 'tcp';
  if (!(PORT_PROTOCOLS as readonly string[]).includes(rawProtocol)) {
    throw new FieldError(`${path}[0].protocol`, `must be TCP or UDP, got '${String(first['protocol'])}'`);
  }
  if (port !== undefined) ctx.features.add('port');
  return {
    ...(port === undefined ? {} : { port }),
    protocol: rawProtocol as PortProtocol,
  };
}

function checkService(ctx: Ctx, port: PortSpec): void {
  const service = ctx.options.service;
  if (service === undefined || service === null) return;
  if (!isObject(service) || !isObject(service['spec'])) {
    warn(ctx, 'service-mismatch', 'service', 'the Service given is not an object with a spec');
    return;
  }
  const ports = Array.isArray(service['spec']['ports']) ? service['spec']['ports'] : [];
  const first: unknown = ports[0];
  const servicePort = isObject(first) ? first['port'] : undefined;
  const serviceProtocol =
    isObject(first) && typeof first['protocol'] === 'string' ? first['protocol'].toLowerCase() : 'tcp';
  if (port.port === undefined) {
    warn(
      ctx,
      'service-mismatch',
      'service.spec.ports',
      'the job has no port but a Service exists for it: jobs-api deletes it on the next update',
    );
  } else if (servicePort !== port.port || serviceProtocol !== (port.protocol ?? 'tcp')) {
    warn(
      ctx,
      'service-mismatch',
      'service.spec.ports[0]',
      `the Service exposes ${String(servicePort)}/${serviceProtocol}, the job ${port.port}/${port.protocol ?? 'tcp'}`,
    );
  }
}

const JOB_FIELD_PATHS: Readonly<Record<string, (ctx: Ctx) => string>> = {
  'spec.job_name': () => 'metadata.name',
  'spec.tool_name': () => 'metadata.namespace',
  'spec.cmd': (c) => `${c.containerPath}.command`,
  'spec.image': (c) => `${c.containerPath}.image`,
  'spec.retry': (c) => `${c.podOwnerPath}.backoffLimit`,
  'spec.timeout': (c) => `${c.podOwnerPath}.activeDeadlineSeconds`,
  'spec.port': (c) => `${c.containerPath}.ports[0].containerPort`,
  'spec.replicas': () => 'spec.replicas',
  'spec.health_check': (c) => `${c.containerPath}.startupProbe`,
  'spec.mount': () => labelPath(LABELS.mount),
  'spec.filelog': () => labelPath(LABELS.filelog),
  'spec.emails': () => labelPath(LABELS.emails),
  'spec.memory': (c) => `${c.containerPath}.resources.limits.memory`,
  'spec.cpu': (c) => `${c.containerPath}.resources.limits.cpu`,
  'spec.schedule': () => 'spec.schedule',
};

function workloadPath(ctx: Ctx, issue: ValidationIssue): string {
  const key = Object.keys(JOB_FIELD_PATHS)
    .filter((k) => issue.path === k || issue.path.startsWith(`${k}.`))
    .sort((a, b) => b.length - a.length)[0];
  const mapped = key === undefined ? undefined : JOB_FIELD_PATHS[key];
  return mapped ? mapped(ctx) : issue.path;
}

function buildJob(ctx: Ctx, version: number): Job {
  const image = readImage(ctx);
  const buildservice = image.type === 'buildservice';
  const command = readCommand(ctx, version, buildservice);
  const resources = readResources(ctx);
  const emails: EmailOption = enumLabel(ctx, LABELS.emails, EMAIL_OPTIONS, 'none');
  const mount = readMount(ctx, image);
  const job: Record<string, unknown> = {
    job_name: ctx.name,
    tool_name: ctx.tool,
    job_type: ctx.jobType,
    cmd: command.cmd,
    image,
  };
  if (command.filelog) job['filelog'] = true;
  else if (!buildservice && !ctx.options.jobsApiFieldsOnly) {
    job['filelog'] = false;
    warn(
      ctx,
      'filelog-made-explicit',
      labelPath(LABELS.filelog),
      "no filelog label on a standard image: written as filelog=false, which jobs-api's parser leaves unset (and would then resolve to true)",
    );
  }
  if (command.filelog_stdout !== null) job['filelog_stdout'] = command.filelog_stdout;
  if (command.filelog_stderr !== null) job['filelog_stderr'] = command.filelog_stderr;
  if (resources.memory !== DEFAULT_MEMORY) job['memory'] = resources.memory;
  if (resources.cpu !== DEFAULT_CPU) job['cpu'] = resources.cpu;
  if (emails !== 'none') job['emails'] = emails;
  if (mount !== undefined) job['mount'] = mount;
  Object.assign(job, typeSpecific(ctx));
  return job as unknown as Job;
}

function retryAndTimeout(ctx: Ctx): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const retry = optionalInteger(ctx.podOwner['backoffLimit'], `${ctx.podOwnerPath}.backoffLimit`);
  if (retry !== undefined && retry !== 0) out['retry'] = retry;
  if (ctx.jobType !== 'scheduled') return out;
  out['schedule'] = readSchedule(ctx);
  const timeout = optionalInteger(ctx.podOwner['activeDeadlineSeconds'], `${ctx.podOwnerPath}.activeDeadlineSeconds`);
  if (timeout !== undefined && timeout !== 0) {
    out['timeout'] = timeout;
    ctx.features.add('timeout');
  }
  return out;
}

function continuousFields(ctx: Ctx): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const port = readPort(ctx);
  if (port.port !== undefined) out['port'] = port.port;
  if (port.protocol !== undefined && port.protocol !== 'tcp') out['port_protocol'] = port.protocol;
  const replicas = optionalInteger(ctx.spec['replicas'], 'spec.replicas') ?? 1;
  if (replicas !== 1) out['replicas'] = replicas;
  const healthCheck = readHealthCheck(ctx);
  if (healthCheck !== undefined) out['health_check'] = healthCheck;
  checkService(ctx, port);
  readDeploymentFeatures(ctx);
  return out;
}

function readDeploymentFeatures(ctx: Ctx): void {
  const selector = optionalObject(ctx.spec['selector'], 'spec.selector');
  const matchLabels = optionalObject(selector?.['matchLabels'], 'spec.selector.matchLabels') ?? {};
  ctx.features.add(LABELS.version in matchLabels ? 'full-selector' : 'minimal-selector');
  const templateMeta = optionalObject(
    requireObject(ctx.spec['template'], 'spec.template')['metadata'],
    'spec.template.metadata',
  );
  const templateAnnotations = optionalObject(templateMeta?.['annotations'], 'spec.template.metadata.annotations') ?? {};
  if (WORKLOAD_ANNOTATIONS.restartedAt in templateAnnotations) ctx.features.add('restarted');
}

function typeSpecific(ctx: Ctx): Record<string, unknown> {
  return ctx.jobType === 'continuous' ? continuousFields(ctx) : retryAndTimeout(ctx);
}

function parseUnsafe(
  obj: unknown,
  settings: RuntimeSettings,
  options: ParseOptions,
  facts: WorkloadFacts | undefined,
): ParseResult {
  const ctx = readContext(obj, settings, options, facts);
  const version = versionOf(ctx.labels);
  if (version === null)
    throw new FieldError(labelPath(LABELS.version), `must be an integer, got '${ctx.labels[LABELS.version] ?? ''}'`);
  if (ctx.kind === 'CronJob' && isObject(obj) && obj['apiVersion'] === 'batch/v1beta1')
    ctx.features.add('batch-v1beta1');
  const era = facts?.era ?? eraOf(ctx, version);
  checkMetadataLabels(ctx, era.id);
  readFeatures(ctx);
  const job = buildJob(ctx, version);
  for (const issue of validateJob(job)) {
    if (issue.severity === 'error') return problem(workloadPath(ctx, issue), issue.message);
    warn(ctx, 'validation', workloadPath(ctx, issue), issue.message);
  }
  return ok({
    job,
    era: { id: era.id, period: era.period, description: era.description, features: [...ctx.features].sort() },
    warnings: ctx.warnings,
  });
}

function eraOf(ctx: Ctx, version: number): Omit<WorkloadEra, 'features'> {
  const command = Array.isArray(ctx.container['command'])
    ? ctx.container['command'].filter((c): c is string => typeof c === 'string')
    : [];
  return detectEra({ labels: ctx.labels, version, command });
}

/**
 * The job jobs-api would read from a CronJob, Deployment or Job of any era (what it would store when it backfills,
 * without `k8s_object`). Never throws and never modifies `obj`; an error names the workload field at fault.
 * `facts`, when the caller found them already (runtime/read), are not derived again.
 */
export function parseWorkload(
  obj: unknown,
  settings: RuntimeSettings,
  options: ParseOptions = {},
  facts?: WorkloadFacts,
): ParseResult {
  try {
    return parseUnsafe(obj, settings, options, facts);
  } catch (e) {
    if (e instanceof FieldError) return problem(e.path, e.reason);
    return problem('', `unexpected: ${e instanceof Error ? e.message : String(e)}`);
  }
}
