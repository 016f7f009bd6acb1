import { ok, problem, type Result } from '../errors.js';
import { workloadKindOf, type WorkloadKind } from './kinds.js';
import { FieldError, isObject, requireArray, requireObject, type KObject } from './object.js';

/** Where the parts of a workload's pod sit, as the field paths errors and notes name. */
export interface PodPaths {
  /** The object holding `template` (and `backoffLimit`): `spec`, or `spec.jobTemplate.spec` of a CronJob. */
  podOwner: string;
  /** The pod template: `<podOwner>.template`. */
  template: string;
  /** The pod spec: `<podOwner>.template.spec`. */
  podSpec: string;
  containers: string;
  /** The first container, the one a job runs. */
  container: string;
}

/**
 * The skeleton every reader of a CronJob, Deployment or Job walks: its kind's row, the object holding the pod
 * template, the pod spec, its containers and the first of them, each with the path it was found at.
 */
export interface PodView {
  kind: WorkloadKind;
  spec: KObject;
  podOwner: KObject;
  podSpec: KObject;
  containers: readonly unknown[];
  container: KObject;
  paths: PodPaths;
}

/**
 * How a reader takes the objects on the way to the container: `exact` (jobs-api's reader) names the first one that
 * is missing or not an object; `lenient` (hand-written workloads, best effort) reads such an object as empty.
 */
export type PodReading = 'exact' | 'lenient';

const PATHS: ReadonlyMap<string, PodPaths> = new Map(
  ['spec', 'spec.jobTemplate.spec'].map((podOwner) => [
    podOwner,
    {
      podOwner,
      template: `${podOwner}.template`,
      podSpec: `${podOwner}.template.spec`,
      containers: `${podOwner}.template.spec.containers`,
      container: `${podOwner}.template.spec.containers[0]`,
    },
  ]),
);

/** The paths of a workload kind's pod parts. */
export function podPaths(kind: WorkloadKind): PodPaths {
  const paths = PATHS.get(kind.podOwnerPath);
  if (paths === undefined) throw new TypeError(`no pod paths for ${kind.kind}`);
  return paths;
}

function viewOf(root: KObject, reading: PodReading): PodView {
  const kindName = root['kind'];
  const kind = typeof kindName === 'string' ? workloadKindOf(kindName) : undefined;
  if (kind === undefined) throw new FieldError('kind', `must be CronJob, Deployment or Job, got '${String(kindName)}'`);
  const paths = podPaths(kind);
  const take = reading === 'exact' ? requireObject : (value: unknown): KObject => (isObject(value) ? value : {});
  const spec = take(root['spec'], 'spec');
  const podOwner =
    kind.podOwnerPath === 'spec' ? spec : take(take(spec['jobTemplate'], 'spec.jobTemplate')['spec'], paths.podOwner);
  const podSpec = take(take(podOwner['template'], paths.template)['spec'], paths.podSpec);
  const rawContainers = podSpec['containers'];
  const containers =
    reading === 'exact'
      ? requireArray(rawContainers, paths.containers)
      : Array.isArray(rawContainers)
        ? rawContainers
        : [];
  const first: unknown = containers[0];
  if (containers.length === 0 || (reading === 'lenient' && !isObject(first)))
    throw new FieldError(paths.containers, 'must have at least one container');
  return { kind, spec, podOwner, podSpec, containers, container: requireObject(first, paths.container), paths };
}

/**
 * The pod view of a CronJob, Deployment or Job, or the problem (its path the field at fault): the one place the
 * exact reader (runtime/parse) and the lenient one (migrate/foreign) find a workload's pod and container.
 */
export function podView(root: KObject, reading: PodReading): Result<PodView> {
  try {
    return ok(viewOf(root, reading));
  } catch (e) {
    if (e instanceof FieldError) return problem(e.path, e.reason);
    throw e;
  }
}

/** The command of a workload's first container, its non-strings left out; empty when there is none. Never throws. */
export function firstCommand(root: KObject): string[] {
  const view = podView(root, 'lenient');
  const command = view.ok ? view.value.container['command'] : undefined;
  return Array.isArray(command) ? command.filter((c): c is string => typeof c === 'string') : [];
}
