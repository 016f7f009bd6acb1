import { parseQuantity, type Dec } from '../jobs/index.js';
import { WORKLOAD_KINDS, workloadKindOf, type WorkloadKindName } from '../runtime/kinds.js';
import { isObject, type KObject } from '../runtime/object.js';
import { podPaths } from '../runtime/pod.js';

/**
 * What makes a live object and the object jobs-api would send comparable: the fields the API server writes itself
 * (identity, bookkeeping, status) are dropped, and the defaults it fills on create are filled on both sides, so a
 * field the render leaves out and the server defaulted is no difference. The two tables below are the only place
 * these are listed.
 */

/** Metadata the API server owns; never part of what jobs-api sends. */
export const SERVER_METADATA_FIELDS: readonly string[] = [
  'uid',
  'resourceVersion',
  'managedFields',
  'creationTimestamp',
  'generation',
  'selfLink',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

/** Annotations written by controllers or clients, not by jobs-api. */
export const SERVER_ANNOTATIONS: readonly string[] = [
  'deployment.kubernetes.io/revision',
  'kubectl.kubernetes.io/last-applied-configuration',
];

/** Labels the Job controller adds to a Job and its pod template (one-off jobs). */
const JOB_CONTROLLER_LABELS: readonly string[] = [
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'controller-uid',
  'job-name',
];

/** The kinds preflight compares: the workload kinds (runtime/kinds) and the Service of a continuous job. */
export type ComparedKind = WorkloadKindName | 'Service';

/** Where the pod template sits in each workload kind. */
export const POD_TEMPLATE_PATH: Readonly<Record<WorkloadKindName, string>> = Object.fromEntries(
  WORKLOAD_KINDS.map((k) => [k.kind, podPaths(k).template]),
) as Record<WorkloadKindName, string>;

type DefaultValue = unknown | ((parent: KObject) => unknown);

export interface ServerDefault {
  kinds: readonly ComparedKind[];
  /** Dotted path; `[*]` stands for every element of a list; `@pod` for the kind's pod template. */
  path: string;
  /** The value, or a function of the object holding the field (undefined: no default in that case). */
  value: DefaultValue;
}

const WORKLOADS: readonly ComparedKind[] = WORKLOAD_KINDS.map((k) => k.kind);
const JOB_SPEC: Readonly<Record<string, unknown>> = {
  backoffLimit: 6,
  completionMode: 'NonIndexed',
  completions: 1,
  parallelism: 1,
  suspend: false,
  podReplacementPolicy: 'TerminatingOrFailed',
};
const PROBE: Readonly<Record<string, unknown>> = {
  successThreshold: 1,
  failureThreshold: 3,
  periodSeconds: 10,
  timeoutSeconds: 1,
  initialDelaySeconds: 0,
};

/** `imagePullPolicy`: Always for `:latest` or an untagged image, IfNotPresent otherwise (and for digests). */
function pullPolicy(container: KObject): unknown {
  const image = container['image'];
  if (typeof image !== 'string') return undefined;
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.indexOf(':');
  return colon < 0 || lastSegment.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

/** The defaults kube-apiserver fills on create (k8s.io/kubernetes pkg/apis/{core,apps,batch}/v1/defaults.go). */
export const SERVER_DEFAULTS: readonly ServerDefault[] = [
  ...Object.entries(JOB_SPEC).flatMap(([key, value]): ServerDefault[] => [
    { kinds: ['CronJob'], path: `spec.jobTemplate.spec.${key}`, value },
    { kinds: ['Job'], path: `spec.${key}`, value },
  ]),
  { kinds: ['CronJob'], path: 'spec.suspend', value: false },
  { kinds: ['CronJob'], path: 'spec.concurrencyPolicy', value: 'Allow' },
  { kinds: ['CronJob'], path: 'spec.successfulJobsHistoryLimit', value: 3 },
  { kinds: ['CronJob'], path: 'spec.failedJobsHistoryLimit', value: 1 },
  { kinds: ['Deployment'], path: 'spec.replicas', value: 1 },
  { kinds: ['Deployment'], path: 'spec.progressDeadlineSeconds', value: 600 },
  { kinds: ['Deployment'], path: 'spec.revisionHistoryLimit', value: 10 },
  { kinds: ['Deployment'], path: 'spec.strategy.type', value: 'RollingUpdate' },
  {
    kinds: ['Deployment'],
    path: 'spec.strategy.rollingUpdate',
    value: (strategy: KObject) =>
      strategy['type'] === 'RollingUpdate' ? { maxSurge: '25%', maxUnavailable: '25%' } : undefined,
  },
  { kinds: ['Deployment'], path: '@pod.spec.restartPolicy', value: 'Always' },
  { kinds: WORKLOADS, path: '@pod.spec.dnsPolicy', value: 'ClusterFirst' },
  { kinds: WORKLOADS, path: '@pod.spec.schedulerName', value: 'default-scheduler' },
  { kinds: WORKLOADS, path: '@pod.spec.terminationGracePeriodSeconds', value: 30 },
  { kinds: WORKLOADS, path: '@pod.spec.enableServiceLinks', value: true },
  { kinds: WORKLOADS, path: '@pod.spec.containers[*].terminationMessagePath', value: '/dev/termination-log' },
  { kinds: WORKLOADS, path: '@pod.spec.containers[*].terminationMessagePolicy', value: 'File' },
  { kinds: WORKLOADS, path: '@pod.spec.containers[*].imagePullPolicy', value: pullPolicy },
  { kinds: WORKLOADS, path: '@pod.spec.containers[*].ports[*].protocol', value: 'TCP' },
  ...['startupProbe', 'livenessProbe', 'readinessProbe'].flatMap((probe) =>
    Object.entries(PROBE).map(([key, value]): ServerDefault => ({
      kinds: WORKLOADS,
      path: `@pod.spec.containers[*].${probe}.${key}`,
      value,
    })),
  ),
  ...['startupProbe', 'livenessProbe', 'readinessProbe'].map((probe): ServerDefault => ({
    kinds: WORKLOADS,
    path: `@pod.spec.containers[*].${probe}.httpGet.scheme`,
    value: 'HTTP',
  })),
  { kinds: ['Service'], path: 'spec.type', value: 'ClusterIP' },
  { kinds: ['Service'], path: 'spec.sessionAffinity', value: 'None' },
  { kinds: ['Service'], path: 'spec.internalTrafficPolicy', value: 'Cluster' },
  { kinds: ['Service'], path: 'spec.ipFamilyPolicy', value: 'SingleStack' },
  { kinds: ['Service'], path: 'spec.ports[*].protocol', value: 'TCP' },
  { kinds: ['Service'], path: 'spec.ports[*].targetPort', value: (port: KObject) => port['port'] },
];

/** Service fields the API server assigns (addresses), different in every cluster. */
const SERVICE_ASSIGNED: readonly string[] = ['clusterIP', 'clusterIPs', 'ipFamilies'];

function deepCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepCopy);
  if (isObject(value)) {
    const out: KObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = deepCopy(v);
    return out;
  }
  return value;
}

/**
 * A copy without what means "absent": null, empty maps and empty lists (`env: []`, `securityContext: {}`) are left
 * out, so the copy never needs deleting from (which would also make V8 slow down on these objects).
 */
function copyClean(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map((v) => copyClean(v) ?? {});
  if (!isObject(value)) return value;
  const out: KObject = {};
  let empty = true;
  for (const k in value) {
    const c = copyClean(value[k]);
    if (c === undefined) continue;
    out[k] = c;
    empty = false;
  }
  return empty ? undefined : out;
}

/** Splits `a.b[*].c` into `['a', 'b', '*', 'c']`. */
function segments(path: string): string[] {
  return path.split('.').flatMap((part) => (part.endsWith('[*]') ? [part.slice(0, -3), '*'] : [part]));
}

/** Drops `keys` from the map at `path` of `root`, and the map itself when that leaves it empty. */
function dropKeys(root: KObject, path: string, keys: readonly string[]): void {
  const dot = path.lastIndexOf('.');
  const parent = dot < 0 ? root : at(root, path.slice(0, dot));
  const name = path.slice(dot + 1);
  if (!isObject(parent)) return;
  const map = parent[name];
  if (!isObject(map)) return;
  if (!keys.some((k) => k in map)) return;
  const kept: KObject = {};
  for (const k in map) if (!keys.includes(k)) kept[k] = map[k];
  if (isEmpty(kept)) delete parent[name];
  else parent[name] = kept;
}

function isEmpty(o: KObject): boolean {
  for (const _ in o) return false;
  return true;
}

/** The kind of an object preflight compares, or undefined for any other. */
export function comparedKindOf(obj: unknown): ComparedKind | undefined {
  const kind = isObject(obj) && typeof obj['kind'] === 'string' ? obj['kind'] : '';
  return kind === 'Service' ? kind : workloadKindOf(kind)?.kind;
}

/**
 * A copy of a workload as comparable data: server-owned fields and status removed, server defaults filled,
 * empty maps and lists removed, quantities left as they are (the diff compares them by value). Never throws.
 */
export function normalizeWorkload(obj: unknown): KObject {
  if (!isObject(obj)) return {};
  // status and managedFields are dropped anyway: not copied at all (managedFields is often half of an object)
  const { status: _status, metadata: rawMetadata, ...rest } = obj;
  const copy = (copyClean(rest) ?? {}) as KObject;
  if (isObject(rawMetadata)) {
    const { managedFields: _managedFields, ...metadataRest } = rawMetadata;
    const metadata = copyClean(metadataRest);
    if (metadata !== undefined) copy['metadata'] = metadata;
  }
  const kind = comparedKindOf(copy);
  dropKeys(copy, 'metadata', SERVER_METADATA_FIELDS);
  dropKeys(copy, 'metadata.annotations', SERVER_ANNOTATIONS);
  if (kind === 'Service') dropKeys(copy, 'spec', SERVICE_ASSIGNED);
  if (kind === 'Job') {
    dropKeys(copy, 'spec', ['selector']);
    dropKeys(copy, 'metadata.labels', JOB_CONTROLLER_LABELS);
    dropKeys(copy, `${POD_TEMPLATE_PATH.Job}.metadata.labels`, JOB_CONTROLLER_LABELS);
  }
  if (kind !== undefined && kind !== 'Service')
    dropKeys(copy, `${POD_TEMPLATE_PATH[kind]}.metadata`, ['creationTimestamp']);
  if (kind === 'CronJob') dropKeys(copy, 'spec.jobTemplate.metadata', ['creationTimestamp']);
  if (kind !== undefined) fillDefaults(copy, kind);
  return copy;
}

/** SERVER_DEFAULTS of one kind as a tree of their paths, so one walk of an object fills them all. */
interface DefaultsTree {
  /** Fields of the object at this node, in table order (a default may read one filled before it). */
  values: [string, DefaultValue][];
  /** Deeper paths; `*` for every element of the list at this node. */
  children: Map<string, DefaultsTree>;
}

function defaultsTree(kind: ComparedKind): DefaultsTree {
  const root: DefaultsTree = { values: [], children: new Map() };
  for (const d of SERVER_DEFAULTS) {
    if (!d.kinds.includes(kind)) continue;
    const parts = segments(kind === 'Service' ? d.path : d.path.replace('@pod', POD_TEMPLATE_PATH[kind]));
    let node = root;
    for (const part of parts.slice(0, -1)) {
      let next = node.children.get(part);
      if (next === undefined) node.children.set(part, (next = { values: [], children: new Map() }));
      node = next;
    }
    node.values.push([parts.at(-1) ?? '', d.value]);
  }
  return root;
}

const DEFAULTS_BY_KIND = new Map<ComparedKind, DefaultsTree>(
  [...WORKLOADS, 'Service' as const].map((kind) => [kind, defaultsTree(kind)]),
);

function applyDefaults(node: unknown, tree: DefaultsTree): void {
  if (Array.isArray(node)) {
    const each = tree.children.get('*');
    if (each !== undefined) for (const item of node) applyDefaults(item, each);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of tree.values) {
    if (node[key] !== undefined) continue;
    const v = typeof value === 'function' ? (value as (parent: KObject) => unknown)(node) : value;
    if (v !== undefined) node[key] = deepCopy(v);
  }
  for (const [key, child] of tree.children) {
    if (key === '*') continue;
    // Defaults fill fields of objects that exist, except a Deployment's strategy (always defaulted).
    if (node[key] === undefined && key === 'strategy') node[key] = {};
    applyDefaults(node[key], child);
  }
}

function fillDefaults(obj: KObject, kind: ComparedKind): void {
  const tree = DEFAULTS_BY_KIND.get(kind);
  if (tree !== undefined) applyDefaults(obj, tree);
}

/** Dotted paths split once: the same few paths are read for every object. */
const SPLIT_PATHS = new Map<string, string[]>();

function at(obj: unknown, path: string): unknown {
  let parts = SPLIT_PATHS.get(path);
  if (parts === undefined) SPLIT_PATHS.set(path, (parts = path.split('.')));
  let node = obj;
  for (const part of parts) node = isObject(node) ? node[part] : undefined;
  return node;
}

/**
 * A quantity in the API server's canonical form ("100m", "1", "512Mi", "1Gi"), so that "0.5Gi", "512Mi" and
 * "536870912" compare and print alike; the text itself when it is not a quantity.
 */
export function canonicalQuantity(text: string, unit: 'cpu' | 'memory'): string {
  const dec = parseQuantity(text);
  if (dec === null) return text;
  if (unit === 'cpu') {
    const milli = scaled(dec, 3);
    if (milli === null) return text;
    return milli % 1000n === 0n ? String(milli / 1000n) : `${milli}m`;
  }
  const bytes = scaled(dec, 0);
  if (bytes === null) return text;
  for (const [suffix, size] of [
    ['Ti', 1n << 40n],
    ['Gi', 1n << 30n],
    ['Mi', 1n << 20n],
    ['Ki', 1n << 10n],
  ] as const) {
    if (bytes !== 0n && bytes % size === 0n) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}

/** d × 10^digits as an integer (rounded up, as the API server rounds quantities), or null for absurd exponents. */
function scaled(d: Dec, digits: number): bigint | null {
  const exp = d.exp + digits;
  if (Math.abs(exp) > 40) return null;
  if (exp >= 0) return d.coef * 10n ** BigInt(exp);
  const div = 10n ** BigInt(-exp);
  const q = d.coef / div;
  return d.coef % div === 0n ? q : q + 1n;
}
