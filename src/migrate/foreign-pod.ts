import { isObject } from '../runtime/object.js';
import { list, obj, problem, set, type Ctx } from './foreign-context.js';

/** The pod and container settings of a hand-written workload that a job cannot carry, each with what to do instead. */

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

export function checkPod(ctx: Ctx): void {
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

export function checkContainer(ctx: Ctx): void {
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
