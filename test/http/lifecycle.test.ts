import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { h2Call } from './h2-call.js';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import request from 'supertest';
import { webhookProcessOf } from '../../src/cli/compose.js';
import type { ServedPhase } from '../../src/cli/compose.js';
import { untilSignal } from '../../src/cli/process.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { createSyncMetrics, createWebhookMetrics } from '../../src/metrics/registry.js';
import { createProbeApp } from '../../src/admin/app.js';
import type { AdminSource } from '../../src/admin/app.js';
import { createAdmissionHandler } from '../../src/webhook/admission.js';
import { webhookRoutes } from '../../src/webhook/routes.js';
import { reviewText } from '../fixtures/admission/load.js';

const MAKE_CERTS = join(import.meta.dirname, '..', '..', 'certs', 'make-certs.sh');
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-lifecycle-test-'));
  execFileSync(MAKE_CERTS, [dir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function listening(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function freePort(): Promise<number> {
  const server = await listening();
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A phase that is known from the start, counting how often the process started and stopped it. */
function countedPhase(): ServedPhase & { starts: number; stops: number } {
  return {
    starts: 0,
    stops: 0,
    current: () => 'runtime-truth',
    known: () => true,
    start() {
      this.starts += 1;
    },
    stop() {
      this.stops += 1;
      return Promise.resolve();
    },
  };
}

function webhookConfig(port: number, shutdownDelaySeconds: number) {
  return configSchema.parse({
    webhook: {
      host: '127.0.0.1',
      port,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      shutdownDelaySeconds,
      shutdownTimeoutSeconds: shutdownDelaySeconds + 60,
    },
  });
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i += 1) await new Promise((r) => setTimeout(r, 20));
  assert.ok(condition(), what);
}

test('the webhook process under untilSignal: the first SIGTERM drains (not ready, still serving), a second ends it at once', async () => {
  const port = await freePort();
  const phase = countedPhase();
  // A shutdown delay far longer than the test may take: only the second signal can end the drain.
  const proc = webhookProcessOf(
    { config: webhookConfig(port, 3600), logger: silentLogger(), metrics: createWebhookMetrics(new Registry()) },
    phase,
  );
  const signals = new EventEmitter();
  const run = untilSignal(proc, { source: signals });
  await until('the webhook is ready', () => proc.ready());
  assert.equal(phase.starts, 1);
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(join(dir, 'ca.crt')) });
  const closed = once(session, 'close');
  session.on('error', () => undefined);
  assert.equal(
    (await h2Call(session, 'POST', '/validate/record-direct-writes', reviewText('cronjob-create-kubectl'))).status,
    200,
  );

  signals.emit('SIGTERM', 'SIGTERM');
  await until('not ready once draining', () => !proc.ready());
  assert.equal((await h2Call(session, 'GET', '/readyz')).status, 503);
  assert.equal(
    (await h2Call(session, 'POST', '/validate/record-direct-writes', reviewText('cronjob-create-kubectl'))).status,
    200,
    'still serving during the shutdown delay',
  );
  assert.equal(phase.stops, 0);

  signals.emit('SIGINT', 'SIGINT');
  assert.equal(await run, 'SIGTERM');
  await closed;
  assert.equal(phase.stops, 1);
  assert.equal(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT'), 0);
  await assert.rejects(
    new Promise((resolve, reject) =>
      https
        .get(
          { host: '127.0.0.1', port, path: '/healthz', ca: readFileSync(join(dir, 'ca.crt')), agent: false },
          resolve,
        )
        .on('error', reject),
    ),
    /ECONNREFUSED/,
  );
});

test('a process that cannot start is stopped, and the start error is what untilSignal rejects with', async () => {
  const taken = await listening();
  try {
    const phase = countedPhase();
    const proc = webhookProcessOf(
      {
        config: webhookConfig((taken.address() as AddressInfo).port, 0),
        logger: silentLogger(),
        metrics: createWebhookMetrics(new Registry()),
      },
      phase,
    );
    const signals = new EventEmitter();
    await assert.rejects(untilSignal(proc, { source: signals }), /EADDRINUSE/);
    assert.deepEqual([phase.starts, phase.stops], [1, 1]);
    assert.equal(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT'), 0);
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});

test('the sync and the webhook serve the same probe routes: /healthz, /readyz with its checks, /metrics, 404', async () => {
  const source: AdminSource = {
    synced: false,
    status: () => {
      throw new Error('not used');
    },
    toolPlan: () => Promise.resolve(undefined),
  };
  const sync = createProbeApp({ source, metrics: createSyncMetrics(new Registry()) });
  const metrics = createWebhookMetrics(new Registry());
  const admission = createAdmissionHandler({
    config: configSchema.parse({}),
    logger: silentLogger(),
    metrics,
    phase: () => 'runtime-truth',
  });
  const webhook = webhookRoutes({
    admission,
    registry: metrics.registry,
    readiness: () => ({ ready: false, checks: { phase: false } }),
  });

  assert.deepEqual((await request(sync).get('/readyz').expect(503)).body, {
    status: 'not ready',
    checks: { synced: false },
  });
  assert.deepEqual((await request(webhook).get('/readyz').expect(503)).body, {
    status: 'not ready',
    checks: { phase: false },
  });
  for (const app of [sync, webhook]) {
    assert.deepEqual((await request(app).get('/healthz').expect(200)).body, { status: 'ok' });
    assert.match((await request(app).get('/metrics').expect(200)).text, /^# HELP /m);
    assert.deepEqual((await request(app).get('/nothing-here').expect(404)).body, { message: 'not found' });
    await request(app).post('/healthz').send('{}').expect(404);
  }
});
