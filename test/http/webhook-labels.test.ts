import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { h2Call } from './h2-call.js';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import request from 'supertest';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import { createAdmissionHandler } from '../../src/webhook/admission.js';
import { webhookRoutes } from '../../src/webhook/routes.js';
import { runWebhook } from '../../src/webhook/server.js';
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
  const server = webhookRoutes({
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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Namespaces that are no tool's: each class once per `i`, all distinct. */
const INVALID_NAMESPACES: ReadonlyArray<[what: string, make: (i: number) => string]> = [
  ['16 KiB', (i) => `tool-t${i}-${'x'.repeat(16 * 1024)}`],
  ['uppercase', (i) => `tool-Tool${i}`],
  ['underscore', (i) => `tool-my_tool${i}`],
  ['64+ characters', (i) => `tool-t${i}-${'a'.repeat(60)}`],
  ['ends with a dash', (i) => `tool-t${i}-`],
  ['wrong prefix', (i) => `tools-t${i}`],
];

test(`${INVENTED} reviews from invalid tool namespaces through the real server: no series for them, /metrics stays small`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'webhook-labels-test-'));
  const ca = await createCA(dir, 'ca', 'jobs-storage-webhook-ca');
  await createLeaf(dir, 'tls', ca, { commonName: 'localhost', usage: 'server', ipAddresses: ['127.0.0.1'] });
  const metrics = createWebhookMetrics(new Registry());
  const handle = await runWebhook({
    config: configSchema.parse({
      webhook: {
        host: '127.0.0.1',
        port: await freePort(),
        certFile: join(dir, 'tls.crt'),
        keyFile: join(dir, 'tls.key'),
        shutdownDelaySeconds: 0,
      },
    }),
    logger: silentLogger(),
    metrics,
    phase: { current: () => 'runtime-truth', known: () => true },
  });
  const session = http2.connect(`https://127.0.0.1:${handle.address.port}`, {
    ca: readFileSync(ca.certFile),
    ALPNProtocols: ['h2'],
  });
  try {
    let sent = 0;
    let counted = 0;
    const batch = 50;
    while (sent < INVENTED) {
      const replies = await Promise.all(
        Array.from({ length: Math.min(batch, INVENTED - sent) }, (_, k) => {
          const i = sent + k;
          const [what, make] = INVALID_NAMESPACES[i % INVALID_NAMESPACES.length] as [string, (i: number) => string];
          // Every class but the wrong prefix is in scope (a namespace with the prefix) and counted, under other.
          if (what !== 'wrong prefix') counted += 1;
          const body = loadReview('cronjob-create-kubectl');
          body.request.uid = randomUUID();
          body.request.namespace = make(i);
          return h2Call(session, 'POST', '/validate/record-direct-writes', JSON.stringify(body));
        }),
      );
      for (const reply of replies) assert.equal(reply.status, 200);
      sent += batch;
    }
    // A real tool's writes keep their own series.
    for (let i = 0; i < 3; i += 1) {
      const body = loadReview('cronjob-create-kubectl');
      body.request.uid = randomUUID();
      body.request.namespace = 'tool-mytool';
      body.request.name = `job-${i}`;
      (body.request.object as { metadata: { name: string } }).metadata.name = `job-${i}`;
      assert.equal((await h2Call(session, 'POST', '/validate/record-direct-writes', JSON.stringify(body))).status, 200);
    }

    const scraped = await h2Call(session, 'GET', '/metrics');
    assert.equal(scraped.status, 200);
    const bytes = Buffer.byteLength(scraped.body);
    t.diagnostic(`/metrics after ${INVENTED} reviews from invalid namespaces: ${bytes} bytes`);
    assert.deepEqual(seriesOf(scraped.body, 'toolforge_jobs_direct_writes_total').sort(), [
      `toolforge_jobs_direct_writes_total{tool_name="mytool",kind="CronJob",operation="CREATE"} 3`,
      `toolforge_jobs_direct_writes_total{tool_name="other",kind="CronJob",operation="CREATE"} ${counted}`,
    ]);
    const longest = Math.max(...scraped.body.split('\n').map((line) => line.length));
    assert.ok(longest < 500, `a /metrics line of ${longest} characters`);
    assert.ok(bytes < 200_000, `/metrics is ${bytes} bytes`);
  } finally {
    session.close();
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
