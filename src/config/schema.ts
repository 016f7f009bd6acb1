import { z } from 'zod';
import { DEFAULT_PHASE, PHASES } from '../rollout/phases.js';

/**
 * The one configuration schema. Every default here is the production value for Toolforge's tools cluster;
 * `docs` in README.md ("Configuration") lists each key.
 */
const seconds = (def: number) => z.number().int().min(0).default(def);
/** A period that drives a loop: zero would spin it. */
const period = (def: number) => z.number().int().min(1).default(def);

const identities = z
  .object({
    /** Usernames allowed to write job CRs (jobs-api and the sync). */
    storageWriters: z
      .array(z.string().min(1))
      .default(['system:serviceaccount:jobs-api:jobs-api', 'system:serviceaccount:jobs-storage:jobs-storage-sync']),
    /** Groups whose writes are allowed everywhere, with a warning, a log line and a counter. */
    breakGlassGroups: z.array(z.string().min(1)).default(['system:masters']),
    /** Field managers jobs-api's runtime client produces (User-Agent prefix before the first '/'). */
    jobsApiFieldManagers: z.array(z.string().min(1)).default(['jobs-api toolforge_weld']),
    /** Field managers of other known Toolforge clients whose writes are not direct job writes. */
    knownClientFieldManagers: z.array(z.string().min(1)).default(['webservice toolforge_weld', 'webservice']),
    /** Usernames (or prefixes ending in ':') of Kubernetes controllers and system components. */
    controllerUsernamePrefixes: z
      .array(z.string().min(1))
      .default(['system:serviceaccount:kube-system:', 'system:kube-controller-manager', 'system:apiserver']),
  })
  .strict()
  .prefault({});

const phaseSource = z
  .object({
    namespace: z.string().min(1).default('jobs-storage'),
    name: z.string().min(1).default('jobs-storage-phase'),
    key: z.string().min(1).default('phase'),
    /** Used until the ConfigMap has been read once. */
    initial: z.enum(PHASES).default(DEFAULT_PHASE),
  })
  .strict()
  .prefault({});

const webhook = z
  .object({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(1).max(65535).default(8443),
    certFile: z.string().default('/etc/webhook/certs/tls.crt'),
    keyFile: z.string().default('/etc/webhook/certs/tls.key'),
    /** controller-runtime's lesson: fs watches miss Secret symlink swaps, so poll too. */
    certPollSeconds: seconds(10),
    /** Keep serving after SIGTERM so the endpoint leaves the Service before we stop (Gatekeeper's shutdown delay). */
    shutdownDelaySeconds: seconds(5),
    shutdownTimeoutSeconds: seconds(20),
    /**
     * PEM CA bundle that signs the client certificate kube-apiserver presents to webhooks (its admission
     * configuration's kubeconfig). When set, admission requests without a valid one are answered 401; reloaded like
     * the serving certificate. Unset: any caller that reaches the port is believed.
     */
    clientCaFile: z.string().min(1).optional(),
    /** Distinct `tool_name` values the webhook's counters keep per process; further tools count under `other`. */
    maxToolSeries: z.number().int().min(1).default(10_000),
  })
  .strict()
  .prefault({});

/**
 * The Events the sync leader writes on workloads not managed through the jobs API, in the tool's namespace, where
 * its maintainers see them (`kubectl get events`); see sync/events/.
 */
const syncEvents = z
  .object({
    enabled: z.boolean().default(true),
    /** Events written per second across all tools (a token bucket), and how many may go at once after a quiet spell. */
    ratePerSecond: z.number().positive().max(1000).default(5),
    burst: z.number().int().min(1).default(25),
    /** Events waiting to be written; more are dropped (and counted) rather than holding up a sync pass. */
    queueSize: z.number().int().min(1).default(1000),
    /**
     * A series is observed again (series.count bumped) this often while its workload stands: the API server deletes
     * an Event an hour after its last write by default (--event-ttl), so the default keeps it in view.
     */
    repeatSeconds: z.number().int().min(60).default(1800),
    /** The page an Event sends a maintainer to for how to move a job to the jobs API. */
    migrationUrl: z.url().default('https://wikitech.wikimedia.org/wiki/Help:Toolforge/Jobs_framework'),
  })
  .strict()
  .prefault({});

const sync = z
  .object({
    /** A workload seen without a CR is backfilled only after this long (jobs-api writes the CR first). */
    backfillGraceSeconds: seconds(60),
    relistSeconds: period(600),
    /**
     * No watch event for this long — bookmarks included, which the API server sends about once a minute — means the
     * watch is presumed stalled and the resource is relisted.
     */
    stallSeconds: period(180),
    /** Objects per list page. Small pages keep the transient JSON small: 100 measured best for peak RSS (bench). */
    listPageSize: z.number().int().min(1).max(5000).default(100),
    /**
     * Lists read at once across the watched resources; bounds the sidecar's peak memory at start and relist. Each
     * list has at most two pages in flight: the next is requested as soon as the current one's continue token is in.
     */
    listConcurrency: z.number().int().min(1).max(16).default(1),
    leaseNamespace: z.string().default('jobs-storage'),
    leaseName: z.string().default('jobs-storage-sync'),
    leaseDurationSeconds: period(15),
    renewDeadlineSeconds: period(10),
    retryPeriodSeconds: period(2),
    /** This replica's name in the Lease; empty means the host name (the pod name in Kubernetes). */
    identity: z.string().default(''),
    /** Port of /metrics, /healthz and /readyz, for Prometheus and the kubelet (0 picks a free one). */
    port: z.number().int().min(0).max(65535).default(9100),
    host: z.string().default('0.0.0.0'),
    events: syncEvents,
  })
  .strict()
  .superRefine((s, ctx) => {
    // client-go's rule: otherwise a leader can still act after a follower has taken over.
    if (!(s.leaseDurationSeconds > s.renewDeadlineSeconds && s.renewDeadlineSeconds > s.retryPeriodSeconds)) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseDurationSeconds'],
        message: 'must be greater than renewDeadlineSeconds, which must be greater than retryPeriodSeconds',
      });
    }
    if (s.stallSeconds >= s.relistSeconds) {
      ctx.addIssue({ code: 'custom', path: ['stallSeconds'], message: 'must be less than relistSeconds' });
    }
  })
  .prefault({});

/** Addresses that reach only this host (or pod): the admin API is plain HTTP and takes bearer tokens. */
const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|localhost)$/;

const admin = z
  .object({
    /**
     * The admin API's own listener. Plain HTTP carrying bearer tokens, so it binds to loopback only; admins reach it
     * through `kubectl port-forward`, which connects to the pod's loopback.
     */
    host: z
      .string()
      .regex(LOOPBACK, { message: "must be a loopback address ('127.0.0.1', '::1' or 'localhost')" })
      .default('127.0.0.1'),
    /** 0 picks a free one. Must differ from `sync.port`. */
    port: z.number().int().min(0).max(65535).default(9101),
    /** Audience an admin requests with `kubectl create token --audience`. */
    audience: z.string().min(1).default('jobs-storage-admin'),
    /** Token subjects (`system:serviceaccount:<ns>:<name>`) allowed to use the admin API. */
    allowedSubjects: z.array(z.string().min(1)).default([]),
    /** Service-account issuer; empty means "read it from the API server's discovery document". */
    issuer: z.string().default(''),
    /** JWKS URL; empty means the API server's own `/openid/v1/jwks`. Needs `issuer`. */
    jwksUri: z.union([z.literal(''), z.url()]).default(''),
    /** Tokens older than this are refused even before they expire (keys are checked locally; no revocation). */
    maxTokenAgeSeconds: period(3600),
  })
  .strict()
  .refine((a) => a.jwksUri === '' || a.issuer !== '', { path: ['issuer'], message: 'is required when jwksUri is set' })
  .prefault({});

const oneShot = z
  .object({
    /**
     * Every command that talks to the cluster gives up once the API server has been unreachable (refused, reset, no
     * answer) for this long, with one line; a daemon retries instead.
     */
    unreachableSeconds: period(20),
    /** How long `import` and `report` wait for the first complete list of every workload and job CR. */
    listSeconds: period(300),
  })
  .strict()
  .prefault({});

const runtime = z
  .object({
    /** jobs-api's `default_cpu_limit` as deployed on tools and toolsbeta (the code default, 4000m, differs). */
    defaultCpuLimit: z.string().default('1000m'),
    toolHomeBase: z.string().default('/data/project'),
    harborHost: z.string().default('tools-harbor.wmcloud.org'),
    /** A copy of the `image-config` ConfigMap's images-v1.yaml; empty means the table built into this release. */
    imageConfigFile: z.string().default(''),
  })
  .strict()
  .prefault({});

const migration = z
  .object({
    /** The date tools must have moved their jobs to the jobs API by (YYYY-MM-DD), as `migrate` messages state it. */
    deadline: z.union([z.literal(''), z.iso.date()]).default(''),
    /** Where the migration was announced (cloud-announce), linked from every `migrate` message. */
    announcementUrl: z.union([z.literal(''), z.url()]).default(''),
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Path of a kubeconfig; empty means in-cluster, else the default loading rules. */
    kubeconfig: z.string().default(''),
    /** The API server address inside a pod (from KUBERNETES_SERVICE_HOST/PORT); used when `kubeconfig` is empty. */
    inCluster: z
      .object({ host: z.string().default(''), port: z.string().default('') })
      .strict()
      .prefault({}),
    toolNamespacePrefix: z.string().min(1).default('tool-'),
    identities,
    phase: phaseSource,
    webhook,
    sync,
    admin,
    oneShot,
    runtime,
    migration,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.admin.port !== 0 && c.admin.port === c.sync.port) {
      ctx.addIssue({ code: 'custom', path: ['admin', 'port'], message: 'must differ from sync.port' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
