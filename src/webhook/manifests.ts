import { stringify } from 'yaml';
import type { Config } from '../config/schema.js';
import { STORAGE_GROUP } from '../storage/kinds.js';
import { ADMISSION_PATH } from './http.js';

/**
 * The admission objects, generated from the configuration so the writer, break-glass and controller lists live in
 * one place (config/schema.ts). `webhook-config/*.yaml` is this output for the defaults; a test fails on drift.
 */

type Identities = Config['identities'];

export const WEBHOOK_NAMES = {
  protectStorage: 'protect-storage.jobs-storage.toolforge.org',
  recordDirectWrites: 'record-direct-writes.jobs-storage.toolforge.org',
} as const;
export const VWC_NAME = 'jobs-storage';
export const POLICY_NAME = 'jobs-storage-protect-storage';

export interface ServiceRef {
  namespace: string;
  name: string;
  port: number;
}

export interface WebhookManifestOptions {
  identities: Identities;
  /** In-cluster Service, or a base URL (`https://127.0.0.1:8443`) to which the admission paths are appended. */
  target: { service: ServiceRef } | { url: string };
  /** PEM CA bundle, base64. Without it, cert-manager's cainjector fills it from `injectCaFrom`. */
  caBundle?: string;
  injectCaFrom?: string;
}

export const DEFAULT_SERVICE: ServiceRef = { namespace: 'jobs-storage', name: 'jobs-storage-webhook', port: 443 };

/** A CEL list literal. JSON string escaping is valid CEL string escaping. */
function celList(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
}

/** CEL for `matchesIdentity` and `isSystemComponent` (policy/evidence.ts) on the request's username. */
function systemIdentityCel(prefixes: readonly string[]): string {
  const user = 'request.userInfo.username';
  const exact = prefixes.filter((p) => !p.endsWith(':'));
  const starts = prefixes.filter((p) => p.endsWith(':')).map((p) => `${user}.startsWith(${JSON.stringify(p)})`);
  const component = `(${user}.startsWith("system:") && !${user}.startsWith("system:serviceaccount:") && ${user} != "system:anonymous")`;
  return [...starts, ...(exact.length > 0 ? [`${user} in ${celList(exact)}`] : []), component].join(' ||\n');
}

function clientConfig(options: WebhookManifestOptions, path: string): Record<string, unknown> {
  const base =
    'service' in options.target
      ? { service: { ...options.target.service, path } }
      : { url: `${options.target.url}${path}` };
  return options.caBundle ? { ...base, caBundle: options.caBundle } : base;
}

const WRITES = ['CREATE', 'UPDATE', 'DELETE'];

export function validatingWebhookConfiguration(options: WebhookManifestOptions): Record<string, unknown> {
  const { identities } = options;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: {
      name: VWC_NAME,
      ...(options.injectCaFrom ? { annotations: { 'cert-manager.io/inject-ca-from': options.injectCaFrom } } : {}),
    },
    webhooks: [
      {
        name: WEBHOOK_NAMES.protectStorage,
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(options, ADMISSION_PATH['protect-storage']),
        rules: [{ apiGroups: [STORAGE_GROUP], apiVersions: ['*'], resources: ['*/*'], operations: WRITES, scope: '*' }],
        matchPolicy: 'Equivalent',
        // The ValidatingAdmissionPolicy is the fail-closed guard (in-process, no network); the webhook only warns,
        // logs and counts, so when it is down (or answers malformed/500) nothing is blocked, break-glass included.
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        timeoutSeconds: 3,
        matchConditions: [
          {
            name: 'not-a-storage-writer',
            expression: `!(request.userInfo.username in ${celList(identities.storageWriters)})`,
          },
        ],
      },
      {
        name: WEBHOOK_NAMES.recordDirectWrites,
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(options, ADMISSION_PATH['record-direct-writes']),
        rules: [
          {
            apiGroups: ['batch'],
            apiVersions: ['v1'],
            resources: ['jobs', 'cronjobs'],
            operations: WRITES,
            scope: 'Namespaced',
          },
          {
            apiGroups: ['apps'],
            apiVersions: ['v1'],
            resources: ['deployments', 'deployments/scale'],
            operations: WRITES,
            scope: 'Namespaced',
          },
        ],
        matchPolicy: 'Equivalent',
        namespaceSelector: { matchLabels: { tenancy: 'tool' } },
        failurePolicy: 'Ignore',
        sideEffects: 'NoneOnDryRun',
        timeoutSeconds: 2,
        matchConditions: [
          {
            name: 'not-a-system-identity',
            expression: `!(${systemIdentityCel(identities.controllerUsernamePrefixes)})`,
          },
          {
            name: 'not-a-cronjob-run',
            expression:
              'request.operation == "DELETE" || object.kind != "Job" || !has(object.metadata.ownerReferences) ||\n' +
              '!object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.kind == "CronJob")',
          },
        ],
      },
    ],
  };
}

/** CEL for `jobsCommand` and `storageDeniedMessage` (policy/messages.ts), so kubectl users read the same text. */
const DENIED_MESSAGE_CEL = [
  'request.kind.kind + " \\"" + variables.name + "\\" is managed by the Toolforge jobs API and cannot be " +',
  '(request.operation == "CREATE" ? "created" : request.operation == "UPDATE" ? "changed" : "deleted") +',
  '" directly; use \'" + (',
  'request.operation == "DELETE" ? "toolforge jobs delete " + variables.name :',
  'request.operation == "UPDATE" ? "toolforge jobs load <jobs.yaml>" :',
  'request.kind.kind == "ScheduledJob" ? "toolforge jobs run " + variables.name + " --schedule ..." :',
  'request.kind.kind == "ContinuousJob" ? "toolforge jobs run " + variables.name + " --continuous ..." :',
  'request.kind.kind == "OneOffJob" ? "toolforge jobs run " + variables.name + " ..." :',
  '"toolforge jobs ...") + "\' instead"',
].join('\n');

/**
 * The audit annotation of a break-glass CR write: who, through which group, what; the empty string (no annotation)
 * for everyone else.
 */
const BREAK_GLASS_AUDIT_CEL = [
  '!(request.userInfo.username in variables.writers) && has(request.userInfo.groups) &&',
  'request.userInfo.groups.exists(g, g in variables.breakGlassGroups) ?',
  '"break-glass " + request.operation + " of " + request.kind.kind + " " + request.namespace + "/" + variables.name +',
  '" by " + request.userInfo.username + " (group " +',
  'request.userInfo.groups.filter(g, g in variables.breakGlassGroups)[0] + ")" : ""',
].join('\n');

/**
 * The writer rule for job CRs inside the apiserver (ValidatingAdmissionPolicy, GA since 1.30): CR protection holds
 * while the webhook is down. It runs before webhooks, so with it installed it answers the denials and the webhook
 * sees only writes it allows (break-glass ones, to warn, log and count).
 */
export function storagePolicy(identities: Identities): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: POLICY_NAME },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [STORAGE_GROUP], apiVersions: ['*'], resources: ['*/*'], operations: WRITES, scope: '*' },
          ],
        },
        variables: [
          { name: 'writers', expression: celList(identities.storageWriters) },
          { name: 'breakGlassGroups', expression: celList(identities.breakGlassGroups) },
          {
            name: 'name',
            expression:
              'request.name != "" ? request.name :\n' +
              '(object != null && has(object.metadata.name) && object.metadata.name != "" ? object.metadata.name : "<name>")',
          },
        ],
        // Break-glass CR writes stay visible while the webhook is down: the audit log records them under
        // `${POLICY_NAME}/break-glass` (empty, so no annotation, for everyone else).
        auditAnnotations: [
          {
            key: 'break-glass',
            valueExpression: BREAK_GLASS_AUDIT_CEL,
          },
        ],
        validations: [
          {
            expression:
              'request.userInfo.username in variables.writers ||\n' +
              '(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in variables.breakGlassGroups))',
            messageExpression: DENIED_MESSAGE_CEL,
            reason: 'Forbidden',
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: POLICY_NAME },
      spec: { policyName: POLICY_NAME, validationActions: ['Deny'] },
    },
  ];
}

const GENERATED =
  '# Generated by `jobs-storage manifests` from the config defaults (src/config/schema.ts); do not edit.\n';

const VWC_HEADER = `${GENERATED}#
# protect-storage: job CRs (every plural and subresource of ${STORAGE_GROUP}). failurePolicy Ignore: the
#   ValidatingAdmissionPolicy in storage-policy.yaml is the fail-closed guard (it runs inside kube-apiserver); this
#   webhook adds warnings, log lines and break-glass counts, so with it down admins' break-glass writes still work.
#   The storage writers are excluded by matchConditions, so jobs-api and the sync never depend on it.
# record-direct-writes: batch Jobs/CronJobs, apps Deployments and deployments/scale (kubectl scale) in tool
#   namespaces. failurePolicy Ignore: counting must never block a tool. sideEffects NoneOnDryRun: dry runs are
#   answered but never counted.
#   namespaceSelector tenancy=tool: a namespace label is a privilege boundary only if tenants cannot edit it
#   (Gatekeeper #231: users added the "ignore" label to their own namespaces). On Toolforge, maintain-kubeusers sets
#   tenancy=tool and the tools-user role grants no write on namespaces, so a tool cannot opt out.
#   matchConditions skip Kubernetes components, kube-system controllers and Jobs owned by a CronJob (ownership of
#   anything else is not trusted: ownerReferences are written by the requester) (Jobs a CronJob
#   runs), which are most of the traffic and never direct writes.
`;

const POLICY_HEADER = `${GENERATED}#
# The writer rule for job CRs, evaluated inside kube-apiserver: deny unless the user is a storage writer or in a
# break-glass group. It holds while the webhook is down. It runs before webhooks, so it answers the denials (same
# message as the webhook); count them with apiserver_validating_admission_policy_check_total{policy="${POLICY_NAME}"}.
# Break-glass writes are allowed and annotated in the audit log as ${POLICY_NAME}/break-glass, webhook or not.
`;

const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

export function renderWebhookConfigurationYaml(options: WebhookManifestOptions): string {
  return VWC_HEADER + stringify(validatingWebhookConfiguration(options), YAML_OPTIONS);
}

export function renderStoragePolicyYaml(identities: Identities): string {
  return (
    POLICY_HEADER +
    storagePolicy(identities)
      .map((doc) => stringify(doc, YAML_OPTIONS))
      .join('---\n')
  );
}

/** The committed files for a configuration, by file name under webhook-config/. */
export function renderManifestFiles(config: Pick<Config, 'identities'>): Record<string, string> {
  return {
    'validating-webhook-configuration.yaml': renderWebhookConfigurationYaml({
      identities: config.identities,
      target: { service: DEFAULT_SERVICE },
      injectCaFrom: `${DEFAULT_SERVICE.namespace}/${DEFAULT_SERVICE.name}`,
    }),
    'storage-policy.yaml': renderStoragePolicyYaml(config.identities),
  };
}
