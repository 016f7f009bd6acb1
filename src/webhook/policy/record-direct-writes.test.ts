import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Phase } from '../../phase/behaviour.js';
import { configSchema } from '../../config/schema.js';
import { loadReview } from '../../../test/fixtures/admission/load.js';
import type { ReviewBody } from '../../../test/fixtures/admission/load.js';
import { parseAdmissionReview } from '../review.js';
import { decideRecordDirectWrite } from './record-direct-writes.js';
import type { PolicyContext, WriteSource } from './types.js';

const config = configSchema.parse({});

function ctx(phase: Phase = 'runtime-truth'): PolicyContext {
  return { identities: config.identities, toolNamespacePrefix: config.toolNamespacePrefix, phase };
}

interface Row {
  fixture: string;
  phase?: Phase;
  edit?: (review: ReviewBody) => void;
  source: WriteSource;
  allowed: boolean;
  /** A substring of the only warning, or false for none. */
  warning: string | false;
  /** The directWrites/breakGlass labels recorded, or undefined for nothing. */
  recorded?: { metric: string; labels: Record<string, string> };
  message?: string;
}

const direct = (kind: string, operation: string) => ({
  metric: 'directWrites',
  labels: { tool_name: 'mytool', kind, operation },
});
const NOT_API = 'not through the Toolforge jobs API';

const rows: Row[] = [
  {
    fixture: 'cronjob-create-kubectl',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-kubectl-unlabelled',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-apply',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-server-side-apply',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-update-kubectl',
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs load <jobs.yaml>'",
    recorded: direct('CronJob', 'UPDATE'),
  },
  {
    fixture: 'cronjob-update-apply',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'UPDATE'),
  },
  {
    fixture: 'cronjob-delete-kubectl',
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs delete daily'",
    recorded: direct('CronJob', 'DELETE'),
  },
  {
    fixture: 'deployment-create-kubectl',
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs run bot --continuous ...'",
    recorded: direct('Deployment', 'CREATE'),
  },
  {
    fixture: 'deployment-delete-kubectl',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('Deployment', 'DELETE'),
  },
  { fixture: 'cronjob-create-dry-run', source: 'dry-run', allowed: true, warning: NOT_API },
  { fixture: 'cronjob-create-jobs-api', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'cronjob-create-field-manager-flag', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'cronjob-update-jobs-api', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'cronjob-delete-collection-jobs-api', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'cronjob-delete-collection-jobs-api-user-patched', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'job-create-from-cronjob', source: 'controller', allowed: true, warning: false },
  { fixture: 'job-create-cronjob-controller', source: 'controller', allowed: true, warning: false },
  { fixture: 'deployment-create-webservice', source: 'known-client', allowed: true, warning: false },
  {
    fixture: 'cronjob-update-break-glass',
    source: 'break-glass',
    allowed: true,
    warning: 'break-glass write (group system:masters)',
    recorded: { metric: 'breakGlass', labels: { resource: 'cronjobs', operation: 'UPDATE' } },
  },
  // Evidence rules, on edited captures.
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.namespace = 'default'),
    source: 'out-of-scope',
    allowed: true,
    warning: false,
  },
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.namespace = 'tool-'),
    source: 'out-of-scope',
    allowed: true,
    warning: false,
  },
  {
    // deployments/status: written by controllers, never a direct write (deployments/scale is, see below).
    fixture: 'deployment-create-kubectl',
    edit: (r) => void (r.request.subResource = 'status'),
    source: 'out-of-scope',
    allowed: true,
    warning: false,
  },
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.userInfo.username = 'system:serviceaccount:tool-mytool:default'),
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.userInfo.username = 'system:kube-controller-manager'),
    source: 'controller',
    allowed: true,
    warning: false,
  },
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.userInfo.username = 'system:serviceaccount:kube-system:generic-garbage-collector'),
    source: 'controller',
    allowed: true,
    warning: false,
  },
  {
    // jobs-api's manager but another user: jobs-api only ever writes with the tool's own certificate.
    fixture: 'cronjob-create-jobs-api',
    edit: (r) => void (r.request.userInfo.username = 'othertool'),
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    // A delete by name of an object jobs-api wrote is kubectl's pattern, not jobs-api's.
    fixture: 'cronjob-delete-collection-jobs-api',
    edit: (r) => void (r.request.name = 'apijob'),
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs delete apijob'",
    recorded: direct('CronJob', 'DELETE'),
  },
  {
    fixture: 'cronjob-create-kubectl',
    edit: (r) => void (r.request.options = { kind: 'CreateOptions', fieldManager: 'webservice' }),
    source: 'known-client',
    allowed: true,
    warning: false,
  },
  // Phases.
  {
    fixture: 'cronjob-create-kubectl',
    phase: 'storage-truth',
    source: 'direct',
    allowed: true,
    warning: '; this is recorded',
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-kubectl',
    phase: 'ignore-unmanaged',
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs list' will not show it",
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    fixture: 'cronjob-create-kubectl',
    phase: 'enforce',
    source: 'direct',
    allowed: false,
    warning: false,
    message: `CronJob "daily" carries Toolforge jobs framework labels, so only the Toolforge jobs API may write it; use 'toolforge jobs run daily --schedule ...' instead`,
  },
  { fixture: 'cronjob-create-dry-run', phase: 'enforce', source: 'dry-run', allowed: false, warning: false },
  { fixture: 'deployment-delete-kubectl', phase: 'enforce', source: 'direct', allowed: false, warning: false },
  {
    fixture: 'cronjob-create-kubectl-unlabelled',
    phase: 'enforce',
    source: 'direct',
    allowed: true,
    warning: "'toolforge jobs list' will not show it",
    recorded: direct('CronJob', 'CREATE'),
  },
  {
    // Removing the labels of an API job with kubectl is still a write of a jobs-framework workload.
    fixture: 'cronjob-update-kubectl',
    phase: 'enforce',
    edit: (r) => void delete (r.request.object as { metadata: { labels?: unknown } }).metadata.labels,
    source: 'direct',
    allowed: false,
    warning: false,
  },
  {
    fixture: 'cronjob-update-break-glass',
    phase: 'enforce',
    source: 'break-glass',
    allowed: true,
    warning: 'break-glass',
    recorded: { metric: 'breakGlass', labels: { resource: 'cronjobs', operation: 'UPDATE' } },
  },
  { fixture: 'cronjob-create-jobs-api', phase: 'enforce', source: 'jobs-api', allowed: true, warning: false },
  { fixture: 'job-create-from-cronjob', phase: 'enforce', source: 'controller', allowed: true, warning: false },
  {
    // kubectl scale of a jobs-framework Deployment: a direct write of the Deployment.
    fixture: 'deployment-scale-kubectl',
    source: 'direct',
    allowed: true,
    warning: NOT_API,
    recorded: direct('Deployment', 'UPDATE'),
  },
  {
    fixture: 'deployment-scale-kubectl',
    phase: 'enforce',
    source: 'direct',
    allowed: false,
    warning: false,
  },
  {
    // The client's Scale carries no selector; the apiserver's old Scale still names the jobs framework.
    fixture: 'deployment-scale-kubectl',
    phase: 'enforce',
    edit: (r) => {
      delete (r.request.object as Record<string, unknown>)['status'];
    },
    source: 'direct',
    allowed: false,
    warning: false,
  },
  {
    // A hand-written Deployment (its selector is not the jobs framework's) may be scaled in enforce: warned, counted.
    fixture: 'deployment-scale-kubectl',
    phase: 'enforce',
    edit: (r) => {
      for (const obj of [r.request.object, r.request.oldObject]) {
        (obj as { status: { selector: string } }).status.selector = 'app=bot';
      }
    },
    source: 'direct',
    allowed: true,
    warning: 'not through the Toolforge jobs API',
    recorded: direct('Deployment', 'UPDATE'),
  },
  {
    // Controllers (the HPA) scale through the same subresource.
    fixture: 'deployment-scale-kubectl',
    phase: 'enforce',
    edit: (r) => {
      r.request.userInfo = { username: 'system:serviceaccount:kube-system:horizontal-pod-autoscaler' };
    },
    source: 'controller',
    allowed: true,
    warning: false,
  },
  {
    // An ownerReference anyone can write does not make a jobs-framework imitation a controller's object.
    fixture: 'deployment-create-kubectl',
    phase: 'enforce',
    edit: (r) => {
      const obj = r.request.object as { metadata: Record<string, unknown> };
      obj.metadata['ownerReferences'] = [
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'mine', uid: 'u', controller: true },
      ];
      obj.metadata['labels'] = {
        ...(obj.metadata['labels'] as object),
        'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
      };
    },
    source: 'direct',
    allowed: false,
    warning: false,
  },
];

describe('record-direct-writes', () => {
  for (const row of rows) {
    const label = `${row.fixture}${row.edit ? ' (edited)' : ''} in ${row.phase ?? 'runtime-truth'} → ${row.source}, ${row.allowed ? 'allowed' : 'denied'}`;
    test(label, () => {
      const review = loadReview(row.fixture);
      row.edit?.(review);
      const decision = decideRecordDirectWrite(parseAdmissionReview(review), ctx(row.phase));
      assert.equal(decision.source, row.source);
      assert.equal(decision.verdict.allowed, row.allowed);
      if (row.warning === false) assert.deepEqual(decision.verdict.warnings, []);
      else {
        assert.equal(decision.verdict.warnings.length, 1);
        assert.ok(decision.verdict.warnings[0]?.includes(row.warning), decision.verdict.warnings[0]);
      }
      if (row.recorded === undefined) assert.equal(decision.recording, undefined);
      else assert.deepEqual({ metric: decision.recording?.metric, labels: decision.recording?.labels }, row.recorded);
      if (!decision.verdict.allowed) {
        assert.equal(decision.verdict.denial.code, 403);
        assert.equal(decision.verdict.denial.reason, 'Forbidden');
        if (row.message !== undefined) assert.equal(decision.verdict.denial.message, row.message);
      }
    });
  }

  test('runtime-truth and storage-truth decide every fixture the same way (no functional change A → B)', () => {
    for (const name of new Set(rows.map((r) => r.fixture))) {
      const a = decideRecordDirectWrite(parseAdmissionReview(loadReview(name)), ctx('runtime-truth'));
      const b = decideRecordDirectWrite(parseAdmissionReview(loadReview(name)), ctx('storage-truth'));
      assert.deepEqual(b, a, name);
    }
  });

  test('a repeated call for the same write yields the same repeat key; another object does not', () => {
    const first = decideRecordDirectWrite(parseAdmissionReview(loadReview('cronjob-create-kubectl')), ctx());
    const again = loadReview('cronjob-create-kubectl');
    again.request.uid = 'another-call-uid';
    const second = decideRecordDirectWrite(parseAdmissionReview(again), ctx());
    const other = decideRecordDirectWrite(parseAdmissionReview(loadReview('cronjob-create-kubectl-unlabelled')), ctx());
    const keyOf = (d: typeof first) => (d.recording?.metric === 'directWrites' ? d.recording.key : undefined);
    assert.ok(keyOf(first));
    assert.equal(keyOf(second), keyOf(first));
    assert.notEqual(keyOf(other), keyOf(first));
  });
});
