import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PHASES } from '../../phase/behaviour.js';
import { configSchema } from '../../config/schema.js';
import { loadReview } from '../../../test/fixtures/admission/load.js';
import type { ReviewBody } from '../../../test/fixtures/admission/load.js';
import { parseAdmissionReview } from '../review.js';
import { decideProtectStorage } from './protect-storage.js';
import type { PolicyContext, WriteSource } from './types.js';

const config = configSchema.parse({});
const ctx: PolicyContext = { identities: config.identities, toolNamespacePrefix: 'tool-', phase: 'runtime-truth' };

interface Row {
  fixture: string;
  edit?: (review: ReviewBody) => void;
  source: WriteSource;
  allowed: boolean;
  message?: string;
  warning?: string;
  recorded?: { metric: string; labels: Record<string, string> };
}

const denied = (operation: string) => ({ metric: 'storageWritesDenied', labels: { operation } });

const rows: Row[] = [
  { fixture: 'scheduledjob-create-jobs-api', source: 'storage-writer', allowed: true },
  { fixture: 'continuousjob-create-jobs-api', source: 'storage-writer', allowed: true },
  { fixture: 'scheduledjob-delete-jobs-api', source: 'storage-writer', allowed: true },
  {
    fixture: 'scheduledjob-create-tool',
    edit: (r) => void (r.request.userInfo.username = 'system:serviceaccount:jobs-storage:jobs-storage-sync'),
    source: 'storage-writer',
    allowed: true,
  },
  {
    fixture: 'scheduledjob-create-tool',
    source: 'not-a-writer',
    allowed: false,
    message: `ScheduledJob "mine" is managed by the Toolforge jobs API and cannot be created directly; use 'toolforge jobs run mine --schedule ...' instead`,
    recorded: denied('CREATE'),
  },
  {
    fixture: 'scheduledjob-update-tool',
    source: 'not-a-writer',
    allowed: false,
    message: `ScheduledJob "daily" is managed by the Toolforge jobs API and cannot be changed directly; use 'toolforge jobs load <jobs.yaml>' instead`,
    recorded: denied('UPDATE'),
  },
  {
    fixture: 'scheduledjob-delete-tool',
    source: 'not-a-writer',
    allowed: false,
    message: `ScheduledJob "daily" is managed by the Toolforge jobs API and cannot be deleted directly; use 'toolforge jobs delete daily' instead`,
    recorded: denied('DELETE'),
  },
  { fixture: 'scheduledjob-update-status-tool', source: 'not-a-writer', allowed: false, recorded: denied('UPDATE') },
  {
    fixture: 'continuousjob-create-jobs-api',
    edit: (r) => void (r.request.userInfo = { username: 'mytool', groups: ['toolforge', 'system:authenticated'] }),
    source: 'not-a-writer',
    allowed: false,
    message: `ContinuousJob "bot" is managed by the Toolforge jobs API and cannot be created directly; use 'toolforge jobs run bot --continuous ...' instead`,
    recorded: denied('CREATE'),
  },
  {
    // Another ServiceAccount (e.g. a tool's own, or a stray controller) is not a writer either.
    fixture: 'scheduledjob-create-tool',
    edit: (r) => void (r.request.userInfo.username = 'system:serviceaccount:tool-mytool:default'),
    source: 'not-a-writer',
    allowed: false,
    recorded: denied('CREATE'),
  },
  {
    fixture: 'scheduledjob-create-tool',
    edit: (r) => {
      r.request.dryRun = true;
    },
    source: 'not-a-writer',
    allowed: false,
  },
  {
    fixture: 'scheduledjob-update-break-glass',
    source: 'break-glass',
    allowed: true,
    warning: `ScheduledJob "daily" is managed by the Toolforge jobs API; allowed as a break-glass write (group system:masters), which is logged and counted`,
    recorded: { metric: 'breakGlass', labels: { resource: 'scheduled-jobs', operation: 'UPDATE' } },
  },
  {
    fixture: 'scheduledjob-update-status-tool',
    edit: (r) => void (r.request.userInfo.groups = ['system:masters']),
    source: 'break-glass',
    allowed: true,
    warning: 'break-glass',
    recorded: { metric: 'breakGlass', labels: { resource: 'scheduled-jobs/status', operation: 'UPDATE' } },
  },
  {
    fixture: 'cronjob-create-kubectl',
    source: 'out-of-scope',
    allowed: true,
  },
];

describe('protect-storage', () => {
  for (const row of rows) {
    test(`${row.fixture}${row.edit ? ' (edited)' : ''} → ${row.source}, ${row.allowed ? 'allowed' : 'denied'}`, () => {
      const review = loadReview(row.fixture);
      row.edit?.(review);
      const decision = decideProtectStorage(parseAdmissionReview(review), ctx);
      assert.equal(decision.source, row.source);
      assert.equal(decision.verdict.allowed, row.allowed);
      assert.deepEqual(decision.verdict.warnings, row.warning === undefined ? [] : decision.verdict.warnings);
      if (row.warning !== undefined)
        assert.ok(decision.verdict.warnings[0]?.includes(row.warning), decision.verdict.warnings[0]);
      if (!decision.verdict.allowed) {
        assert.equal(decision.verdict.denial.code, 403);
        assert.match(decision.verdict.denial.message, /is managed by the Toolforge jobs API .* use 'toolforge jobs /);
        if (row.message !== undefined) assert.equal(decision.verdict.denial.message, row.message);
      }
      if (row.recorded === undefined) assert.equal(decision.recording, undefined);
      else assert.deepEqual(decision.recording, row.recorded);
    });
  }

  test('CR protection is the same in every phase', () => {
    for (const phase of PHASES) {
      const decision = decideProtectStorage(parseAdmissionReview(loadReview('scheduledjob-delete-tool')), {
        ...ctx,
        phase,
      });
      assert.equal(decision.verdict.allowed, false, phase);
    }
  });
});
