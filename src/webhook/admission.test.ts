import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Phase } from '../phase/behaviour.js';
import { configSchema } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../metrics/registry.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { loadReview, reviewText } from '../../test/fixtures/admission/load.js';
import { createAdmission, createAdmissionHandler } from './admission.js';

const config = configSchema.parse({});

function setup(phase: Phase = 'runtime-truth', recordsBatchMs = 0) {
  const metrics = createWebhookMetrics(new Registry());
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  let clock = 0;
  const state = { phase };
  const admission = createAdmission({
    config,
    logger: createLogger({ level: 'info', destination }),
    metrics,
    phase: () => state.phase,
    now: () => clock,
    recordsBatchMs,
  });
  return { handle: admission.answer, admission, metrics, lines, state, advance: (ms: number) => (clock += ms) };
}

async function value(
  metrics: WebhookMetrics,
  name: keyof WebhookMetrics,
  labels: Record<string, string>,
): Promise<number> {
  const metric = metrics[name] as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> };
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return match?.value ?? 0;
}

const cronCreate = { tool_name: 'mytool', kind: 'CronJob', operation: 'CREATE' };

test('a direct write is answered with a warning, counted and logged with the decision fields', async () => {
  const { handle, metrics, lines } = setup();
  const answer = handle('record-direct-writes', reviewText('cronjob-create-kubectl'));
  assert.equal(answer.status, 200);
  const body = JSON.parse(answer.body) as {
    apiVersion: string;
    kind: string;
    response: { uid: string; allowed: boolean; warnings: string[] };
  };
  assert.equal(body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(body.kind, 'AdmissionReview');
  assert.equal(body.response.uid, loadReview('cronjob-create-kubectl').request.uid);
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.warnings.length, 1);
  assert.equal(await value(metrics, 'directWrites', cronCreate), 1);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'record-direct-writes', decision: 'allow' }), 1);
  const line = lines.find((l) => l['msg'] === 'admission decision');
  assert.ok(line);
  assert.equal(line['uid'], body.response.uid);
  assert.equal(line['namespace'], 'tool-mytool');
  assert.equal(line['kind'], 'CronJob');
  assert.equal(line['operation'], 'CREATE');
  assert.equal(line['decision'], 'allow');
  assert.equal(line['reason'], 'direct');
  assert.equal(line['counted'], true);
});

test('the same write admitted again (a retried call, new uid) is counted and logged once; after the window, again', async () => {
  const { handle, metrics, advance, lines } = setup();
  handle('record-direct-writes', reviewText('cronjob-create-kubectl'));
  const retry = loadReview('cronjob-create-kubectl');
  retry.request.uid = 'second-call';
  handle('record-direct-writes', JSON.stringify(retry));
  assert.equal(await value(metrics, 'directWrites', cronCreate), 1);
  assert.equal(lines.filter((l) => l['msg'] === 'admission decision').length, 1);
  advance(60_000);
  handle('record-direct-writes', JSON.stringify(retry));
  assert.equal(await value(metrics, 'directWrites', cronCreate), 2);
});

test('dry runs, jobs-api writes and denials are not counted as direct writes', async () => {
  const { handle, metrics, state } = setup();
  handle('record-direct-writes', reviewText('cronjob-create-dry-run'));
  handle('record-direct-writes', reviewText('cronjob-create-jobs-api'));
  state.phase = 'enforce';
  const denied = JSON.parse(handle('record-direct-writes', reviewText('cronjob-create-kubectl')).body) as {
    response: { allowed: boolean; status: { code: number; message: string } };
  };
  assert.equal(denied.response.allowed, false);
  assert.equal(denied.response.status.code, 403);
  assert.equal(await value(metrics, 'directWrites', cronCreate), 0);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'record-direct-writes', decision: 'deny' }), 1);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'record-direct-writes', decision: 'allow' }), 2);
});

test('the phase is read on every review', async () => {
  const { handle, state } = setup();
  const warn = (phase: Phase) => {
    state.phase = phase;
    const review = loadReview('cronjob-create-kubectl-unlabelled');
    return (
      JSON.parse(handle('record-direct-writes', JSON.stringify(review)).body) as { response: { warnings: string[] } }
    ).response.warnings[0];
  };
  assert.match(warn('runtime-truth') ?? '', /this is recorded/);
  assert.match(warn('ignore-unmanaged') ?? '', /will not show it/);
});

test('CR denials and break-glass writes are counted on their own counters', async () => {
  const { handle, metrics, lines } = setup();
  handle('protect-storage', reviewText('scheduledjob-delete-tool'));
  handle('protect-storage', reviewText('scheduledjob-update-break-glass'));
  handle('protect-storage', reviewText('scheduledjob-create-jobs-api'));
  assert.equal(await value(metrics, 'storageWritesDenied', { operation: 'DELETE' }), 1);
  assert.equal(await value(metrics, 'breakGlass', { resource: 'scheduled-jobs', operation: 'UPDATE' }), 1);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'protect-storage', decision: 'deny' }), 1);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'protect-storage', decision: 'allow' }), 2);
  const breakGlass = lines.find((l) => l['reason'] === 'break-glass');
  assert.equal(breakGlass?.['level'], 'warn');
  assert.equal(breakGlass?.['user'], 'someadmin');
});

test('a body that is not JSON or not an AdmissionReview answers 400 with a JSON message and is counted as an error', async () => {
  const { handle, metrics } = setup();
  const notJson = handle('protect-storage', '{"apiVersion":');
  assert.equal(notJson.status, 400);
  assert.match((JSON.parse(notJson.body) as { message: string }).message, /not valid JSON/);
  const wrong = handle('protect-storage', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
  assert.equal(wrong.status, 400);
  assert.match(
    (JSON.parse(wrong.body) as { message: string }).message,
    /^AdmissionReview: apiVersion must be admission\.k8s\.io\/v1/,
  );
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'protect-storage', decision: 'error' }), 2);
});

test('every review is timed per webhook', async () => {
  const { handle, metrics } = setup();
  handle('protect-storage', reviewText('scheduledjob-create-tool'));
  handle('record-direct-writes', reviewText('cronjob-create-kubectl'));
  const text = await metrics.registry.getSingleMetricAsString('toolforge_jobs_admission_duration_seconds');
  assert.match(text, /toolforge_jobs_admission_duration_seconds_count\{webhook="protect-storage"\} 1/);
  assert.match(text, /toolforge_jobs_admission_duration_seconds_count\{webhook="record-direct-writes"\} 1/);
});

function reviewWith(patch: Record<string, unknown>): string {
  const body = loadReview('cronjob-create-kubectl');
  return JSON.stringify({ ...body, request: { ...body.request, ...patch } });
}

interface Undecided {
  kind: string;
  response: { uid: string; allowed: boolean; status: { code: number; reason: string; message: string } };
}

test('a malformed review with a readable uid is answered 200 with an AdmissionReview and status 400: protect-storage denies, record-direct-writes allows', async () => {
  const { handle, metrics } = setup();
  const uid = loadReview('cronjob-create-kubectl').request.uid;
  for (const [webhook, allowed] of [
    ['protect-storage', false],
    ['record-direct-writes', true],
  ] as const) {
    const answer = handle(webhook, reviewWith({ object: 'not an object' }));
    assert.equal(answer.status, 200);
    const body = JSON.parse(answer.body) as Undecided;
    assert.equal(body.kind, 'AdmissionReview');
    assert.equal(body.response.uid, uid);
    assert.equal(body.response.allowed, allowed);
    assert.equal(body.response.status.code, 400);
    assert.equal(body.response.status.reason, 'BadRequest');
    assert.match(body.response.status.message, /^AdmissionReview: request\.object must be an object/);
    assert.equal(await value(metrics, 'admissionRequests', { webhook, decision: 'error' }), 1);
  }
  assert.equal(await value(metrics, 'directWrites', cronCreate), 0);
});

test('managedFields and ownerReferences of the wrong shape are malformed input (400), not an internal error', () => {
  const { handle } = setup();
  for (const metadata of [
    { managedFields: [null] },
    { managedFields: 'kubectl' },
    { ownerReferences: [null] },
    { ownerReferences: { kind: 'CronJob' } },
  ]) {
    const answer = handle('record-direct-writes', reviewWith({ object: { kind: 'Job', metadata } }));
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as Undecided).response.status.code, 400, JSON.stringify(metadata));
  }
});

test('an internal error is answered 200 with status 500, logged and counted as an error', async () => {
  const metrics = createWebhookMetrics(new Registry());
  const handle = createAdmissionHandler({
    config,
    logger: createLogger({ level: 'silent' }),
    metrics,
    phase: () => {
      throw new Error('phase store broken');
    },
  });
  const uid = loadReview('cronjob-create-kubectl').request.uid;
  for (const [webhook, allowed] of [
    ['protect-storage', false],
    ['record-direct-writes', true],
  ] as const) {
    const answer = handle(webhook, reviewText('cronjob-create-kubectl'));
    assert.equal(answer.status, 200);
    const body = JSON.parse(answer.body) as Undecided;
    assert.equal(body.response.uid, uid);
    assert.equal(body.response.allowed, allowed);
    assert.deepEqual(body.response.status, {
      code: 500,
      reason: 'InternalError',
      message: 'internal error deciding the admission review',
    });
    assert.equal(await value(metrics, 'admissionRequests', { webhook, decision: 'error' }), 1);
  }
});

test('with a batch, a review is answered at once and its counters and decision line follow, timed at the decision', async () => {
  const { admission, metrics, lines } = setup('runtime-truth', 60_000);
  const before = Date.now();
  const answer = admission.answer('record-direct-writes', reviewText('cronjob-create-kubectl'));
  const after = Date.now();
  assert.equal((JSON.parse(answer.body) as { response: { allowed: boolean } }).response.allowed, true);
  assert.equal(lines.length, 0, 'nothing applied before the batch');
  await new Promise((resolve) => setTimeout(resolve, 20));
  admission.flush();
  const line = lines.find((l) => l['msg'] === 'admission decision');
  assert.ok(line, 'the decision line is written by the flush');
  assert.equal(line['counted'], true);
  const time = Date.parse(String(line['time']));
  assert.ok(time >= before && time <= after, `line time ${String(line['time'])} is the decision's`);
  admission.flush();
  assert.equal(lines.filter((l) => l['msg'] === 'admission decision').length, 1, 'a record is applied once');
  assert.equal(await value(metrics, 'directWrites', cronCreate), 1);
});

test('with a batch, a read of the admission metrics applies the records still waiting', async () => {
  const { admission, metrics, lines } = setup('runtime-truth', 60_000);
  admission.answer('record-direct-writes', reviewText('cronjob-create-kubectl'));
  assert.equal(lines.length, 0);
  assert.equal(await value(metrics, 'directWrites', cronCreate), 1);
  assert.equal(await value(metrics, 'admissionRequests', { webhook: 'record-direct-writes', decision: 'allow' }), 1);
  assert.equal(lines.filter((l) => l['msg'] === 'admission decision').length, 1);
  const text = await metrics.registry.getSingleMetricAsString('toolforge_jobs_admission_duration_seconds');
  assert.match(text, /toolforge_jobs_admission_duration_seconds_count\{webhook="record-direct-writes"\} 1/);
});

test('a batch is applied by its timer, in the order of the reviews', async () => {
  const { admission, metrics, lines } = setup('runtime-truth', 10);
  admission.answer('record-direct-writes', reviewText('cronjob-create-kubectl'));
  admission.answer('protect-storage', reviewText('scheduledjob-create-tool'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(await value(metrics, 'directWrites', cronCreate), 1);
  const decisions = lines.filter((l) => l['msg'] === 'admission decision');
  assert.deepEqual(
    decisions.map((l) => [l['webhook'], l['decision']]),
    [
      ['record-direct-writes', 'allow'],
      ['protect-storage', 'deny'],
    ],
  );
});
