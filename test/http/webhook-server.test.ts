import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { h2Call } from './h2-call.js';
import type { H2Reply } from './h2-call.js';
import type { ClientHttp2Session } from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Phase } from '../../src/phase/behaviour.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import type { WebhookMetrics } from '../../src/metrics/registry.js';
import { runWebhook } from '../../src/webhook/server.js';
import type { WebhookHandle, WebhookPhase } from '../../src/webhook/server.js';
import { reviewText } from '../fixtures/admission/load.js';

const MAKE_CERTS = join(import.meta.dirname, '..', '..', 'certs', 'make-certs.sh');
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-server-test-'));
  execFileSync(MAKE_CERTS, [dir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function fixedPhase(known = true, phase: Phase = 'runtime-truth'): WebhookPhase & { setKnown(v: boolean): void } {
  let isKnown = known;
  return {
    current: () => phase,
    known: () => isKnown,
    setKnown: (v) => (isKnown = v),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function start(
  phase: WebhookPhase,
  overrides: Record<string, unknown> = {},
  initialPhase: Phase = 'runtime-truth',
): Promise<{ handle: WebhookHandle; metrics: WebhookMetrics }> {
  const config = configSchema.parse({
    phase: { initial: initialPhase },
    webhook: {
      host: '127.0.0.1',
      port: await freePort(),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      certPollSeconds: 1,
      shutdownDelaySeconds: 0,
      shutdownTimeoutSeconds: 5,
      ...overrides,
    },
  });
  const metrics = createWebhookMetrics(new Registry());
  const handle = await runWebhook({
    config,
    logger: silentLogger(),
    metrics,
    phase,
  });
  return { handle, metrics };
}

type Reply = H2Reply;

function call(
  handle: WebhookHandle,
  method: string,
  path: string,
  body?: string,
  client?: { cert: Buffer; key: Buffer },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: handle.address.port,
        method,
        path,
        ca: readFileSync(join(dir, 'ca.crt')),
        ...(client ? { cert: client.cert, key: client.key } : {}),
        agent: false,
        headers: body ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function servedSerial(handle: WebhookHandle): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: handle.address.port, ca: readFileSync(join(dir, 'ca.crt')) },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.end();
        resolve(serial);
      },
    );
    socket.on('error', reject);
  });
}

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('serves admission over HTTPS with the files’ certificate and exports its expiry', async () => {
  const { handle, metrics } = await start(fixedPhase());
  try {
    const reply = await call(handle, 'POST', '/validate/record-direct-writes', reviewText('cronjob-create-kubectl'));
    assert.equal(reply.status, 200);
    assert.equal((JSON.parse(reply.body) as { response: { allowed: boolean } }).response.allowed, true);
    const expiry = (await metrics.certExpiry.get()).values[0]?.value ?? 0;
    const notAfter = Date.parse(
      execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', join(dir, 'tls.crt')])
        .toString()
        .replace('notAfter=', ''),
    );
    assert.equal(expiry, Math.floor(notAfter / 1000));
    assert.equal((await call(handle, 'GET', '/healthz')).status, 200);
  } finally {
    await handle.close();
  }
});

test('a scrape right after a review counts it (its records wait in a batch); a stopped webhook leaves no exit listener', async () => {
  const { handle } = await start(fixedPhase());
  const exitListeners = process.listenerCount('exit');
  try {
    const reply = await call(handle, 'POST', '/validate/record-direct-writes', reviewText('cronjob-create-kubectl'));
    assert.equal(reply.status, 200);
    const scrape = await call(handle, 'GET', '/metrics');
    assert.match(
      scrape.body,
      /toolforge_jobs_direct_writes_total\{tool_name="mytool",kind="CronJob",operation="CREATE"\} 1/,
    );
    assert.match(
      scrape.body,
      /toolforge_jobs_admission_requests_total\{webhook="record-direct-writes",decision="allow"\} 1/,
    );
  } finally {
    await handle.close();
  }
  assert.equal(process.listenerCount('exit'), exitListeners - 1, 'the listener that applies waiting records is gone');
});

test('not ready until the phase is known', async () => {
  const phase = fixedPhase(false);
  const { handle } = await start(phase);
  try {
    const before = await call(handle, 'GET', '/readyz');
    assert.equal(before.status, 503);
    assert.deepEqual((JSON.parse(before.body) as { checks: unknown }).checks, {
      certificate: true,
      phase: false,
      draining: false,
    });
    phase.setKnown(true);
    assert.equal((await call(handle, 'GET', '/readyz')).status, 200);
  } finally {
    await handle.close();
  }
});

async function allowed(handle: WebhookHandle, webhook: string, fixture: string): Promise<boolean> {
  const reply = await call(handle, 'POST', `/validate/${webhook}`, reviewText(fixture));
  assert.equal(reply.status, 200);
  return (JSON.parse(reply.body) as { response: { allowed: boolean } }).response.allowed;
}

test('before the phase is known only what every phase denies is denied, even when enforce is configured', async () => {
  const phase = fixedPhase(false, 'enforce');
  const { handle } = await start(phase, {}, 'enforce');
  try {
    // A kubectl create of a jobs-framework-labelled CronJob: denied in enforce, allowed in every other phase.
    assert.equal(await allowed(handle, 'record-direct-writes', 'cronjob-create-kubectl'), true);
    // A tool writing its job CR itself: denied in every phase.
    assert.equal(await allowed(handle, 'protect-storage', 'scheduledjob-create-tool'), false);
    phase.setKnown(true);
    assert.equal(await allowed(handle, 'record-direct-writes', 'cronjob-create-kubectl'), false);
    assert.equal(await allowed(handle, 'protect-storage', 'scheduledjob-create-tool'), false);
  } finally {
    await handle.close();
  }
});

test('a rotated certificate is served without a restart; a broken pair keeps the previous one', async () => {
  const { handle, metrics } = await start(fixedPhase());
  try {
    const first = await servedSerial(handle);
    execFileSync(MAKE_CERTS, [dir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    await eventually(async () => (await servedSerial(handle)) !== first);
    const rotated = await servedSerial(handle);
    const reloads = async (result: string) =>
      (await metrics.certReloads.get()).values.find((v) => v.labels['result'] === result)?.value ?? 0;
    assert.equal(await reloads('success'), 2);

    const goodKey = readFileSync(join(dir, 'tls.key'));
    execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      join(dir, 'tls.key'),
    ]);
    await eventually(async () => (await reloads('error')) > 0);
    assert.equal(await servedSerial(handle), rotated);
    writeFileSync(join(dir, 'tls.key'), goodKey);
    assert.equal((await call(handle, 'GET', '/readyz')).status, 200);
  } finally {
    await handle.close();
  }
});

test('shutdown: not ready at once, serves through the delay, finishes in-flight requests, then stops accepting', async () => {
  const { handle } = await start(fixedPhase(), { shutdownDelaySeconds: 1, shutdownTimeoutSeconds: 5 });
  const body = reviewText('cronjob-create-kubectl');
  const inFlight = new Promise<Reply>((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: handle.address.port,
        method: 'POST',
        path: '/validate/record-direct-writes',
        ca: readFileSync(join(dir, 'ca.crt')),
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 100));
    setTimeout(() => req.end(body.slice(100)), 1500);
  });
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  const closing = handle.close();
  assert.equal((await call(handle, 'GET', '/readyz')).status, 503);
  assert.equal(
    (await call(handle, 'POST', '/validate/record-direct-writes', body)).status,
    200,
    'still serving during the delay',
  );
  assert.equal((await inFlight).status, 200);
  await closing;
  assert.ok(Date.now() - started >= 1000);
  await assert.rejects(call(handle, 'GET', '/healthz'), /ECONNREFUSED/);
});

test('shutdown cuts connections still open at the deadline', async () => {
  const { handle } = await start(fixedPhase(), { shutdownDelaySeconds: 0, shutdownTimeoutSeconds: 1 });
  const stuck = new Promise<string>((resolve) => {
    const req = https.request({
      host: '127.0.0.1',
      port: handle.address.port,
      method: 'POST',
      path: '/validate/record-direct-writes',
      ca: readFileSync(join(dir, 'ca.crt')),
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': 100_000 },
    });
    req.on('error', (err) => resolve(err.message));
    req.write('{');
  });
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  await handle.close();
  assert.ok(Date.now() - started < 2000);
  assert.match(await stuck, /socket hang up|ECONNRESET/);
});

/** A CA (`<name>-ca.crt`) and a client certificate it signs (`<name>.crt`, `<name>.key`), as kube-apiserver's would be. */
function makeClientCert(name: string, cn = 'kube-apiserver'): { ca: string; cert: Buffer; key: Buffer } {
  const at = (f: string) => join(dir, f);
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  execFileSync('openssl', ['genpkey', ...ec, '-out', at(`${name}-ca.key`)]);
  execFileSync('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    at(`${name}-ca.key`),
    '-days',
    '1',
    '-subj',
    `/CN=${name}-ca`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-out',
    at(`${name}-ca.crt`),
  ]);
  execFileSync('openssl', ['genpkey', ...ec, '-out', at(`${name}.key`)]);
  execFileSync('openssl', ['req', '-new', '-key', at(`${name}.key`), '-subj', `/CN=${cn}`, '-out', at(`${name}.csr`)]);
  writeFileSync(at(`${name}.ext`), 'extendedKeyUsage=clientAuth\n');
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at(`${name}-ca.crt`),
      '-CAkey',
      at(`${name}-ca.key`),
      '-set_serial',
      '1',
      '-days',
      '1',
      '-extfile',
      at(`${name}.ext`),
      '-out',
      at(`${name}.crt`),
    ],
    { stdio: 'ignore' },
  );
  return { ca: at(`${name}-ca.crt`), cert: readFileSync(at(`${name}.crt`)), key: readFileSync(at(`${name}.key`)) };
}

test('with a client CA, admission needs a client certificate it signed (401 and a count otherwise); probes and /metrics stay open', async () => {
  const apiserver = makeClientCert('apiserver-client');
  const stranger = makeClientCert('stranger');
  const clientCaFile = join(dir, 'client-ca.crt');
  writeFileSync(clientCaFile, readFileSync(apiserver.ca));
  const { handle, metrics } = await start(fixedPhase(), { clientCaFile });
  const refused = async (reason: string) =>
    (await metrics.admissionUnauthenticated.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
  try {
    const review = reviewText('cronjob-create-kubectl');
    const anonymous = await call(handle, 'POST', '/validate/record-direct-writes', review);
    assert.equal(anonymous.status, 401);
    assert.match((JSON.parse(anonymous.body) as { message: string }).message, /client certificate/);
    assert.equal(await refused('no_certificate'), 1);
    const wrongCa = await call(handle, 'POST', '/validate/protect-storage', review, stranger);
    assert.equal(wrongCa.status, 401);
    assert.equal(await refused('untrusted_certificate'), 1);
    const ok = await call(handle, 'POST', '/validate/record-direct-writes', review, apiserver);
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as { response: { allowed: boolean } }).response.allowed, true);
    for (const path of ['/healthz', '/readyz', '/metrics'])
      assert.equal((await call(handle, 'GET', path)).status, 200, path);
    const directWrites = (await metrics.directWrites.get()).values.reduce((sum, v) => sum + v.value, 0);
    assert.equal(directWrites, 1, 'refused reviews are never decided nor counted');

    // The client CA reloads like the serving pair: after a swap only the new CA's certificates are believed.
    writeFileSync(clientCaFile, readFileSync(stranger.ca));
    await eventually(
      async () => (await call(handle, 'POST', '/validate/protect-storage', review, stranger)).status === 200,
    );
    assert.equal((await call(handle, 'POST', '/validate/protect-storage', review, apiserver)).status, 401);
  } finally {
    await handle.close();
  }
});

test('a client CA file that cannot be read keeps the webhook not ready', async () => {
  const { handle } = await start(fixedPhase(), { clientCaFile: join(dir, 'no-such-ca.crt') });
  try {
    // Without a usable context there is no TLS handshake at all (as with a missing serving pair): read readiness.
    assert.equal(handle.readiness().ready, false);
    assert.equal(handle.readiness().checks['certificate'], false);
  } finally {
    await handle.close();
  }
});

/** An h2 session to the webhook (ALPN h2 only, so it fails rather than fall back to HTTP/1.1). */
function h2Session(handle: WebhookHandle, client?: { cert: Buffer; key: Buffer }): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${handle.address.port}`, {
      ca: readFileSync(join(dir, 'ca.crt')),
      ALPNProtocols: ['h2'],
      ...(client ? { cert: client.cert, key: client.key } : {}),
    });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

test('h2: ALPN offers h2, admission and the probe routes answer over one session, HTTP/1.1 still served', async () => {
  const { handle } = await start(fixedPhase());
  const session = await h2Session(handle);
  try {
    assert.equal(session.alpnProtocol, 'h2');
    const review = reviewText('cronjob-create-kubectl');
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h2Call(session, 'POST', i % 2 ? '/validate/record-direct-writes' : '/validate/protect-storage', review),
      ),
    );
    for (const reply of replies) {
      assert.equal(reply.status, 200);
      assert.equal((JSON.parse(reply.body) as { response: { allowed: boolean } }).response.allowed, true);
    }
    const bad = await h2Call(session, 'POST', '/validate/record-direct-writes', 'not json');
    assert.equal(bad.status, 400);
    assert.match((JSON.parse(bad.body) as { message: string }).message, /not valid JSON/);
    assert.deepEqual(JSON.parse((await h2Call(session, 'GET', '/healthz')).body), { status: 'ok' });
    const ready = await h2Call(session, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), {
      status: 'ready',
      checks: { certificate: true, phase: true, draining: false },
    });
    const scraped = await h2Call(session, 'GET', '/metrics');
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /admission_requests_total\{webhook="record-direct-writes",decision="allow"\} 10/);
    assert.equal((await h2Call(session, 'GET', '/nowhere')).status, 404);
    assert.equal((await h2Call(session, 'DELETE', '/healthz')).status, 404);
    assert.deepEqual(handle.connections(), { h2: 1, http1: 0, open: 1 });

    // The same port still speaks HTTP/1.1 (kubelet probes, scrapes, older clients), through express.
    assert.equal((await call(handle, 'GET', '/readyz')).status, 200);
    assert.equal((await call(handle, 'POST', '/validate/record-direct-writes', review)).status, 200);
    assert.equal(handle.connections().h2, 1);
    assert.equal(handle.connections().http1, 2);
  } finally {
    session.close();
    await handle.close();
  }
});

test('h2: without a client certificate from the client CA admission is refused 401; probes stay open', async () => {
  const apiserver = makeClientCert('h2-apiserver-client');
  const clientCaFile = join(dir, 'h2-client-ca.crt');
  writeFileSync(clientCaFile, readFileSync(apiserver.ca));
  const { handle, metrics } = await start(fixedPhase(), { clientCaFile });
  const anonymous = await h2Session(handle);
  const trusted = await h2Session(handle, apiserver);
  try {
    const review = reviewText('cronjob-create-kubectl');
    const refused = await h2Call(anonymous, 'POST', '/validate/record-direct-writes', review);
    assert.equal(refused.status, 401);
    assert.match((JSON.parse(refused.body) as { message: string }).message, /client certificate/);
    const counted = (await metrics.admissionUnauthenticated.get()).values.find(
      (v) => v.labels['reason'] === 'no_certificate',
    );
    assert.equal(counted?.value, 1);
    assert.equal((await h2Call(anonymous, 'GET', '/readyz')).status, 200);
    assert.equal((await h2Call(trusted, 'POST', '/validate/record-direct-writes', review)).status, 200);
  } finally {
    anonymous.close();
    trusted.close();
    await handle.close();
  }
});

test('h2: a rotated certificate is served to new sessions without a restart', async () => {
  const { handle } = await start(fixedPhase());
  const serial = async () => {
    const session = await h2Session(handle);
    const value = (session.socket as TLSSocket).getPeerCertificate().serialNumber;
    session.close();
    return value;
  };
  try {
    const first = await serial();
    execFileSync(MAKE_CERTS, [dir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    await eventually(async () => (await serial()) !== first);
    const session = await h2Session(handle);
    assert.equal((await h2Call(session, 'GET', '/healthz')).status, 200);
    session.close();
  } finally {
    await handle.close();
  }
});

test('h2 shutdown: GOAWAY on open sessions, in-flight streams finish, then no new connections', async () => {
  const { handle } = await start(fixedPhase(), { shutdownDelaySeconds: 0, shutdownTimeoutSeconds: 5 });
  const session = await h2Session(handle);
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const body = reviewText('cronjob-create-kubectl');
  const inFlight = new Promise<Reply>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/validate/record-direct-writes' });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    stream.write(body.slice(0, 100));
    setTimeout(() => stream.end(body.slice(100)), 500);
  });
  await new Promise((r) => setTimeout(r, 100));
  const closing = handle.close();
  await goaway;
  const reply = await inFlight;
  assert.equal(reply.status, 200);
  assert.equal((JSON.parse(reply.body) as { response: { allowed: boolean } }).response.allowed, true);
  await closing;
  await eventually(() => Promise.resolve(handle.connections().open === 0));
  await assert.rejects(h2Session(handle), /ECONNREFUSED/);
});

/** HTTP/2 frames as a raw client reads them (RFC 9113 §4.1): the frames of `buf` and the bytes left over. */
function h2Frames(buf: Buffer): { frames: Array<{ type: number; flags: number; payload: Buffer }>; rest: Buffer } {
  const frames: Array<{ type: number; flags: number; payload: Buffer }> = [];
  let at = 0;
  while (buf.length - at >= 9) {
    const length = buf.readUIntBE(at, 3);
    if (buf.length - at < 9 + length) break;
    frames.push({ type: buf[at + 3] ?? 0, flags: buf[at + 4] ?? 0, payload: buf.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return { frames, rest: buf.subarray(at) };
}

function h2Frame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  return Buffer.concat([head, payload]);
}

test('h2 shutdown: after the GOAWAY the session stays open for the notice period, so frames a peer sent before reading it are not met by a reset', async (t) => {
  const SETTINGS = 0x4;
  const PING = 0x6;
  const GOAWAY = 0x7;
  const { handle } = await start(fixedPhase(), { shutdownDelaySeconds: 0, shutdownTimeoutSeconds: 10 });
  // A raw client, like kube-apiserver's between the GOAWAY leaving the server and reaching its reader.
  const socket = connect({
    host: '127.0.0.1',
    port: handle.address.port,
    ca: readFileSync(join(dir, 'ca.crt')),
    servername: 'localhost',
    ALPNProtocols: ['h2'],
  });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  assert.equal(socket.alpnProtocol, 'h2');
  const seen: Array<{ type: number; flags: number; payload: Buffer; at: number }> = [];
  let pending: Buffer = Buffer.alloc(0);
  let ended: string | undefined;
  socket.on('data', (chunk: Buffer) => {
    const { frames, rest } = h2Frames(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const f of frames) seen.push({ ...f, at: Date.now() });
  });
  socket.on('end', () => (ended ??= 'end'));
  socket.on('error', (err: NodeJS.ErrnoException) => (ended ??= err.code ?? err.message));
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(SETTINGS, 0, Buffer.alloc(0))]));
  await eventually(() => Promise.resolve(seen.some((f) => f.type === SETTINGS && f.flags === 0)));
  socket.write(h2Frame(SETTINGS, 0x1, Buffer.alloc(0)));

  const closing = handle.close();
  await eventually(() => Promise.resolve(seen.some((f) => f.type === GOAWAY)));
  const firstGoaway = seen.find((f) => f.type === GOAWAY);
  assert.ok(firstGoaway);
  // It names the last stream processed (none here): a stream the peer sent after it is refused unprocessed.
  assert.equal(firstGoaway.payload.readUInt32BE(0) & 0x7fffffff, 0);
  // A frame the peer sends now (here a PING; kube-apiserver's would be a request's HEADERS) reaches an open
  // connection, which is still open a while later: no reset for it.
  await new Promise((r) => setTimeout(r, 100));
  socket.write(h2Frame(PING, 0, Buffer.from('jobs-sto')));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ended, undefined, 'the connection ended before the notice period did');
  // Then an orderly end of the connection, no reset.
  await eventually(() => Promise.resolve(ended !== undefined), 5_000);
  assert.equal(ended, 'end');
  t.diagnostic(`GOAWAY -> end of the connection: ${Date.now() - firstGoaway.at} ms`);
  await closing;
  socket.destroy();
});
