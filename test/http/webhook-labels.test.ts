import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import request from 'supertest';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import { createAdmissionHandler } from '../../src/webhook/admission.js';
import { createApp } from '../../src/webhook/app.js';
import { loadReview } from '../fixtures/admission/load.js';

const INVENTED = 2_000;

function app(maxToolSeries: number) {
  const metrics = createWebhookMetrics(new Registry());
  const admission = createAdmissionHandler({
    config: configSchema.parse({ webhook: { maxToolSeries } }),
    logger: silentLogger(),
    metrics,
    phase: () => 'runtime-truth',
  });
  const server = createApp({
    admission,
    registry: metrics.registry,
    readiness: () => ({ ready: true, checks: {} }),
  });
  return { server, admission };
}

/** A kubectl CronJob create with an invented kind, resource and (optionally) an invented tool namespace. */
function invented(i: number, namespace: string): string {
  const body = loadReview('cronjob-create-kubectl');
  const noise = `${i}-${'x'.repeat(i % 300)}`;
  body.request.uid = randomUUID();
  body.request.namespace = namespace;
  body.request['kind'] = { group: 'batch', version: 'v1', kind: `Invented${noise}` };
  body.request.name = `job-${i}`;
  (body.request.object as { metadata: { name: string } }).metadata.name = `job-${i}`;
  return JSON.stringify(body);
}

function seriesOf(text: string, metric: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${metric}{`));
}

test(`${INVENTED} reviews with invented kinds in one tool add one series, under kind="other"`, async () => {
  const { server, admission } = app(10_000);
  const before = (await request(server).get('/metrics')).text.length;
  for (let i = 0; i < INVENTED; i += 1) {
    assert.equal(admission('record-direct-writes', invented(i, 'tool-mytool')).status, 200);
  }
  const text = (await request(server).get('/metrics')).text;
  assert.deepEqual(seriesOf(text, 'toolforge_jobs_direct_writes_total'), [
    `toolforge_jobs_direct_writes_total{tool_name="mytool",kind="other",operation="CREATE"} ${INVENTED}`,
  ]);
  assert.ok(text.length - before < 2_000, `/metrics grew by ${text.length - before} bytes`);
});

test(`${INVENTED} reviews from invented tool namespaces keep at most maxToolSeries tool series, the rest under other`, async () => {
  const max = 100;
  const { server, admission } = app(max);
  for (let i = 0; i < INVENTED; i += 1) admission('record-direct-writes', invented(i, `tool-invented${i}`));
  const text = (await request(server).get('/metrics')).text;
  const series = seriesOf(text, 'toolforge_jobs_direct_writes_total');
  assert.equal(series.length, max + 1);
  assert.ok(
    series.includes(
      `toolforge_jobs_direct_writes_total{tool_name="other",kind="other",operation="CREATE"} ${INVENTED - max}`,
    ),
  );
  assert.ok(text.length < 40_000, `/metrics is ${text.length} bytes`);
});
