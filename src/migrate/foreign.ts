import { JOB_NAME_MAX_LENGTH, JOB_NAME_PATTERN, type JobType } from '../jobs/index.js';
import { DEFAULT_TOOL_NAMESPACE_PREFIX } from '../jobs/tenancy.js';
import { failure, ok, type CodedProblem, type Result } from '../errors.js';
import { workloadFacts } from '../runtime/facts.js';
import type { WorkloadKindName } from '../runtime/kinds.js';
import { MANAGED_BY_WEBSERVICE, LABELS } from '../runtime/labels.js';
import { isObject } from '../runtime/object.js';
import { podView } from '../runtime/pod.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { problem, set, type Ctx, type ForeignNote } from './foreign-context.js';
import { checkContainer, checkPod } from './foreign-pod.js';
import { readCommand, readContinuous, readImage, readResources, readRetry, readSchedule } from './foreign-run.js';
import { isBuildserviceImageName, type LoadEntry } from './load-file.js';

export type { ForeignNote, ProblemCode } from './foreign-context.js';

/**
 * Hand-written ("foreign") CronJobs, Deployments and Jobs → the load entry that replaces them, best effort.
 * Whatever the jobs API cannot express is listed, per object, with the reason and what to do instead; it is never
 * dropped silently. A note marked `attention` means the job will behave differently (or not run) unless a
 * person acts; the others only say what changes. The workload is read through runtime's facts and pod view, the
 * same skeleton jobs-api's reader (runtime/parse) walks, but leniently: a missing part reads as empty.
 */

export interface ForeignConversion {
  name: string;
  tool: string;
  kind: WorkloadKindName;
  jobType: JobType;
  /** null when no entry can be written at all (the notes say why). */
  entry: LoadEntry | null;
  problems: ForeignNote[];
  needsAttention: boolean;
}

/** `not-a-job`: the object is no job definition (the message says why); `unreadable`: the path names the fault. */
export type ForeignFailure = CodedProblem<'not-a-job' | 'unreadable'>;

export type ForeignResult = Result<ForeignConversion, ForeignFailure>;

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

/** The reading context of a workload that is a job definition, or why it cannot be read. */
function context(input: unknown, settings: RuntimeSettings): Result<Ctx, ForeignFailure> {
  const unreadable = (path: string, message: string) => failure<ForeignFailure>({ code: 'unreadable', path, message });
  const notAJob = (message: string) => failure<ForeignFailure>({ code: 'not-a-job', path: '', message });
  if (!isObject(input)) return unreadable('', 'not a Kubernetes object');
  const facts = workloadFacts(input, settings.toolNamespacePrefix);
  if (facts === undefined) return notAJob(`kind ${String(input['kind'])} is not a job`);
  if (facts.labels[LABELS.managedBy] === MANAGED_BY_WEBSERVICE) return notAJob(`${facts.kind} managed by webservice`);
  if (facts.cronJobOwner !== undefined) return notAJob('a run of a CronJob, not a job definition');
  if (facts.workload === undefined) return notAJob(`kind ${facts.kind} is not a job`);
  const prefix = settings.toolNamespacePrefix ?? DEFAULT_TOOL_NAMESPACE_PREFIX;
  if (facts.name === '') return unreadable('metadata.name', 'is missing');
  if (facts.namespaceTool === undefined)
    return unreadable('metadata.namespace', `must be '${prefix}<tool>', got '${facts.namespace}'`);
  const view = podView(input, 'lenient');
  if (!view.ok) return unreadable(view.problem.path, view.problem.message);
  const { spec, podOwner, podSpec, container, paths } = view.value;
  return ok({
    settings,
    kind: facts.workload.kind,
    jobType: facts.workload.jobType,
    tool: facts.namespaceTool,
    name: facts.name,
    spec,
    owner: podOwner,
    ownerPath: paths.podOwner,
    pod: podSpec,
    podPath: paths.podSpec,
    container,
    containerPath: paths.container,
    problems: [],
    entry: {},
  });
}

/** Converts one hand-written workload. Never throws; objects that are not jobs say why. */
export function convertForeign(input: unknown, settings: RuntimeSettings): ForeignResult {
  const read = context(input, settings);
  if (!read.ok) return read;
  const ctx = read.value;
  checkName(ctx);
  checkPod(ctx);
  checkContainer(ctx);
  const image = readImage(ctx);
  const buildservice = isBuildserviceImageName(image);
  const command = readCommand(ctx, buildservice);
  readResources(ctx);
  const jobType = ctx.jobType;
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
  return ok({
    name: ctx.name,
    tool: ctx.tool,
    kind: ctx.kind,
    jobType,
    entry,
    problems: ctx.problems,
    needsAttention: ctx.problems.some((p) => p.attention),
  });
}
