import { split as shlexSplit } from 'shlex';
import {
  compareDec,
  decToString,
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  formatCpu,
  formatCron,
  formatMemory,
  halfDec,
  imageTypeOf,
  imageUrl,
  JOB_DEFAULT_CPU,
  JOB_DEFAULT_MEMORY,
  parseQuantity,
  resolveJob,
  toolHome,
  type ContinuousJob,
  type HealthCheck,
  type Job,
} from '../jobs/index.js';
import { ok, problem, type Result } from '../errors.js';
import { renderCommand } from './command.js';
import { namespaceOfTool } from '../jobs/tenancy.js';
import { generateLabels, WORKLOAD_ANNOTATIONS } from './labels.js';
import { workloadKindForJobType } from './kinds.js';
import type { KObject } from './object.js';
import type { RuntimeSettings } from './settings.js';

export interface RenderOptions {
  /** The tool's uid (passwd "<project>.<tool>"); without it the security contexts carry no user or group. */
  toolUid?: number;
}

/** The objects, or the problem, its path naming the job field at fault. */
export type RenderResult = Result<KObject[]>;

const JOB_TTL_AFTER_FINISHED = 30;
const TERMINATION_GRACE_PERIOD = 15;
const CONTAINER_NAME = 'job';
const STARTUP_PROBE = {
  initialDelaySeconds: 0,
  periodSeconds: 1,
  failureThreshold: 120,
  timeoutSeconds: 5,
};
const LIVENESS_PROBE = {
  initialDelaySeconds: 0,
  periodSeconds: 10,
  failureThreshold: 3,
  timeoutSeconds: 5,
};

class RenderError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

function uidFields(uid: number | undefined): Record<string, number> {
  return uid === undefined ? {} : { runAsGroup: uid, runAsUser: uid };
}

function podSecurityContext(uid: number | undefined): KObject {
  return {
    ...(uid === undefined ? {} : { fsGroup: uid }),
    ...uidFields(uid),
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function containerSecurityContext(uid: number | undefined): KObject {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: false,
    ...uidFields(uid),
    runAsNonRoot: true,
  };
}

function decimal(value: string, path: string): NonNullable<ReturnType<typeof parseQuantity>> {
  const d = parseQuantity(value);
  if (d === null) throw new RenderError(path, `'${value}' is not a Kubernetes quantity`);
  return d;
}

/** `_generate_container_resources`: memory request is half the limit above 512Mi; the default cpu gets the default limit. */
function resources(job: Job, defaultCpuLimit: string): KObject {
  const memory = formatMemory(job.memory ?? DEFAULT_MEMORY) ?? job.memory ?? DEFAULT_MEMORY;
  const cpu = formatCpu(job.cpu ?? DEFAULT_CPU) ?? job.cpu ?? DEFAULT_CPU;
  const mem = decimal(memory, 'spec.memory');
  const memoryRequest =
    compareDec(mem, decimal(JOB_DEFAULT_MEMORY, 'spec.memory')) <= 0 ? memory : decToString(halfDec(mem));
  const dec = decimal(cpu, 'spec.cpu');
  const cpuLimit = compareDec(dec, decimal(JOB_DEFAULT_CPU, 'spec.cpu')) === 0 ? defaultCpuLimit : decToString(dec);
  return {
    requests: { memory: memoryRequest, cpu: decToString(dec) },
    limits: { memory, cpu: cpuLimit },
  };
}

function probeCommand(script: string, buildservice: boolean): string[] {
  if (!buildservice) return ['/bin/sh', '-c', script];
  try {
    return ['launcher', ...shlexSplit(script)];
  } catch (e) {
    throw new RenderError('spec.health_check.script', `cannot be split into arguments: ${(e as Error).message}`);
  }
}

/** `get_healthcheck_for_k8s`: script → exec, http → httpGet on the port, none with a tcp port → tcpSocket. */
function probes(job: ContinuousJob, buildservice: boolean): KObject {
  const hc: HealthCheck | null | undefined = job.health_check;
  const port = job.port ?? undefined;
  let action: KObject | undefined;
  if (hc?.type === 'script') action = { exec: { command: probeCommand(hc.script, buildservice) } };
  else if (hc?.type === 'http') action = port ? { httpGet: { path: hc.path, port } } : undefined;
  else if (port && (job.port_protocol ?? 'tcp') === 'tcp') action = { tcpSocket: { port } };
  if (action === undefined) return {};
  return {
    startupProbe: { ...action, ...STARTUP_PROBE },
    livenessProbe: { ...structuredClone(action), ...LIVENESS_PROBE },
  };
}

function labelsOf(job: Job): Record<string, string> {
  return generateLabels({
    tool: job.tool_name,
    job: job.job_name,
    type: job.job_type,
    filelog: job.filelog ?? false,
    emails: job.emails ?? 'none',
    ...(job.mount ? { mount: job.mount } : {}),
  });
}

function minimalLabels(job: Job): Record<string, string> {
  return generateLabels({
    tool: job.tool_name,
    job: job.job_name,
    version: false,
  });
}

function podTemplate(job: Job, settings: RuntimeSettings, options: RenderOptions): KObject {
  const buildservice = imageTypeOf(job.image) === 'buildservice';
  const command = renderCommand({
    cmd: job.cmd,
    filelog_stdout: job.filelog_stdout,
    filelog_stderr: job.filelog_stderr,
    buildservice,
  });
  if (!command.ok) throw new RenderError('spec.cmd', command.problem.message);
  const env: KObject[] = buildservice
    ? [
        {
          name: 'NO_HOME',
          value: 'a buildservice pod does not need a home env',
        },
      ]
    : [];
  const container: KObject = {
    name: CONTAINER_NAME,
    image: imageUrl(job.image),
    ...(buildservice ? {} : { workingDir: toolHome(job.tool_name, settings) }),
    env,
    command: command.value,
    resources: resources(job, settings.defaultCpuLimit),
    securityContext: containerSecurityContext(options.toolUid),
  };
  if (job.job_type === 'continuous') {
    Object.assign(container, probes(job, buildservice));
    if (job.port) {
      container['ports'] = [
        {
          containerPort: job.port,
          protocol: (job.port_protocol ?? 'tcp').toUpperCase(),
        },
      ];
      env.push({ name: 'PORT', value: String(job.port) });
    }
  }
  return {
    metadata: { labels: labelsOf(job) },
    spec: {
      restartPolicy: job.job_type === 'continuous' ? 'Always' : 'Never',
      terminationGracePeriodSeconds: TERMINATION_GRACE_PERIOD,
      securityContext: podSecurityContext(options.toolUid),
      containers: [container],
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: minimalLabels(job) },
        },
      ],
    },
  };
}

function metadata(job: Job, namespace: string): KObject {
  return {
    name: job.job_name,
    namespace,
    labels: labelsOf(job),
  };
}

function renderObjects(job: Job, settings: RuntimeSettings, options: RenderOptions): KObject[] {
  const namespace = namespaceOfTool(job.tool_name, settings.toolNamespacePrefix);
  const template = podTemplate(job, settings, options);
  switch (job.job_type) {
    case 'one-off':
      return [
        {
          apiVersion: 'batch/v1',
          kind: workloadKindForJobType('one-off').kind,
          metadata: metadata(job, namespace),
          spec: {
            template,
            ttlSecondsAfterFinished: JOB_TTL_AFTER_FINISHED,
            backoffLimit: job.retry ?? 0,
          },
        },
      ];
    case 'scheduled': {
      const jobSpec: KObject = {
        template,
        ttlSecondsAfterFinished: JOB_TTL_AFTER_FINISHED,
        backoffLimit: job.retry ?? 0,
      };
      if (job.timeout) jobSpec['activeDeadlineSeconds'] = job.timeout;
      return [
        {
          apiVersion: 'batch/v1',
          kind: workloadKindForJobType('scheduled').kind,
          metadata: {
            ...metadata(job, namespace),
            annotations: { [WORKLOAD_ANNOTATIONS.cronExpression]: job.schedule.text },
          },
          spec: {
            schedule: formatCron(job.schedule),
            successfulJobsHistoryLimit: 1,
            failedJobsHistoryLimit: 1,
            concurrencyPolicy: 'Forbid',
            startingDeadlineSeconds: 30,
            jobTemplate: { spec: jobSpec },
          },
        },
      ];
    }
    case 'continuous': {
      const replicas = job.replicas ?? 1;
      const deployment: KObject = {
        apiVersion: 'apps/v1',
        kind: workloadKindForJobType('continuous').kind,
        metadata: metadata(job, namespace),
        spec: {
          replicas,
          strategy: { type: replicas === 1 ? 'Recreate' : 'RollingUpdate' },
          template,
          selector: { matchLabels: minimalLabels(job) },
        },
      };
      return job.port ? [deployment, service(job, job.port, namespace)] : [deployment];
    }
  }
}

function service(job: ContinuousJob, port: number, namespace: string): KObject {
  const labels = generateLabels({
    tool: job.tool_name,
    job: job.job_name,
    type: 'continuous',
  });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: job.job_name,
      namespace,
      labels,
    },
    spec: {
      selector: { ...labels },
      type: 'ClusterIP',
      ports: [
        {
          protocol: (job.port_protocol ?? 'tcp').toUpperCase(),
          port,
          targetPort: port,
        },
      ],
    },
  };
}

/**
 * The objects current jobs-api (version "2") creates for a job: CronJob, Deployment (plus a Service when it has a
 * port) or Job. The job is resolved first, as jobs-api does. Never throws.
 */
export function renderJobWorkloads(job: Job, settings: RuntimeSettings, options: RenderOptions = {}): RenderResult {
  try {
    return ok(renderObjects(resolveJob(job, settings), settings, options));
  } catch (e) {
    if (e instanceof RenderError) return problem(e.path, e.reason);
    return problem('', `unexpected: ${e instanceof Error ? e.message : String(e)}`);
  }
}
