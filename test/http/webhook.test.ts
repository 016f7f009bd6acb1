import assert from 'node:assert/strict';
import { test } from 'node:test';
import request from 'supertest';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import { createAdmissionHandler } from '../../src/webhook/admission.js';
import type { Readiness } from '../../src/http/routes.js';
import { MAX_REVIEW_BYTES } from '../../src/webhook/http.js';
import { webhookRoutes } from '../../src/webhook/routes.js';
import { loadReview, reviewText } from '../fixtures/admission/load.js';

function app(readiness: Readiness = { ready: true, checks: { certificate: true, phase: true, draining: false } }) {
  const metrics = createWebhookMetrics(new Registry());
  const admission = createAdmissionHandler({
    config: configSchema.parse({}),
    logger: silentLogger(),
    metrics,
    phase: () => 'runtime-truth',
  });
  return webhookRoutes({ admission, registry: metrics.registry, readiness: () => readiness });
}

function post(path: string, body: string) {
  return request(app()).post(path).set('content-type', 'application/json').send(body);
}

test('record-direct-writes answers a kubectl CronJob create with the uid, allowed and a warning', async () => {
  const res = await post('/validate/record-direct-writes', reviewText('cronjob-create-kubectl'));
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] ?? '', /application\/json/);
  assert.equal(res.body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(res.body.kind, 'AdmissionReview');
  assert.equal(res.body.response.uid, loadReview('cronjob-create-kubectl').request.uid);
  assert.equal(res.body.response.allowed, true);
  assert.match(res.body.response.warnings[0], /not through the Toolforge jobs API/);
});

test('protect-storage denies a tool deleting its ScheduledJob with a 403 Status naming the command', async () => {
  const res = await post('/validate/protect-storage', reviewText('scheduledjob-delete-tool'));
  assert.equal(res.status, 200);
  assert.equal(res.body.response.allowed, false);
  assert.deepEqual(res.body.response.status, {
    code: 403,
    reason: 'Forbidden',
    message: `ScheduledJob "daily" is managed by the Toolforge jobs API and cannot be deleted directly; use 'toolforge jobs delete daily' instead`,
  });
});

test('a malformed body is a 400 with a JSON message', async () => {
  const res = await post('/validate/protect-storage', '{"kind":"AdmissionReview"}');
  assert.equal(res.status, 400);
  assert.match(res.body.message, /^AdmissionReview: /);
});

test('a body that is not JSON is refused by content type', async () => {
  const res = await request(app()).post('/validate/protect-storage').set('content-type', 'text/plain').send('hello');
  assert.equal(res.status, 415);
  assert.match(res.body.message, /application\/json/);
});

test('a body above the limit is a 413', async () => {
  const res = await post('/validate/record-direct-writes', `{"pad":"${'x'.repeat(MAX_REVIEW_BYTES)}"}`);
  assert.equal(res.status, 413);
});

test('/healthz answers while the process runs; /readyz reflects readiness with its checks', async () => {
  assert.equal((await request(app()).get('/healthz')).status, 200);
  const ready = await request(app()).get('/readyz');
  assert.equal(ready.status, 200);
  const notReady = await request(
    app({ ready: false, checks: { certificate: true, phase: false, draining: false } }),
  ).get('/readyz');
  assert.equal(notReady.status, 503);
  assert.deepEqual(notReady.body.checks, { certificate: true, phase: false, draining: false });
});

test('/metrics exposes the direct-write counter per tool, kind and operation', async () => {
  const server = app();
  await request(server)
    .post('/validate/record-direct-writes')
    .set('content-type', 'application/json')
    .send(reviewText('cronjob-create-kubectl'));
  const res = await request(server).get('/metrics');
  assert.equal(res.status, 200);
  assert.match(
    res.text,
    /toolforge_jobs_direct_writes_total\{tool_name="mytool",kind="CronJob",operation="CREATE"\} 1/,
  );
  assert.match(
    res.text,
    /toolforge_jobs_admission_requests_total\{webhook="record-direct-writes",decision="allow"\} 1/,
  );
});

test('other paths and methods are 404', async () => {
  assert.equal((await request(app()).get('/validate/protect-storage')).status, 404);
  assert.equal((await post('/validate/other', reviewText('cronjob-create-kubectl'))).status, 404);
});
