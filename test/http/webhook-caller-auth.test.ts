import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import type { WebhookMetrics } from '../../src/metrics/registry.js';
import { runWebhook } from '../../src/webhook/server.js';
import type { WebhookHandle } from '../../src/webhook/server.js';
import { callerAuthenticated, parseCertificateBundle } from '../../src/webhook/tls.js';
import { reviewText } from '../fixtures/admission/load.js';

/**
 * Caller authentication against resumed TLS sessions. A client without a certificate is refused once, keeps the
 * session the server gave it and comes back resuming that session: with TLS 1.3 node then reports the connection
 * `authorized` though no certificate was presented on it. Every door (HTTP/1.1, h2) must still refuse it.
 */

const ATTEMPTS = 20;
const REVIEW_PATH = '/validate/record-direct-writes';

interface Client {
  cert: Buffer;
  key: Buffer;
}

let dir = '';
let servingCa: Buffer;
let apiserver: Client;
let stranger: Client;
let apiserverCa = '';
let strangerCa = '';

async function clientOf(name: string, caName: string): Promise<{ client: Client; caFile: string }> {
  const ca = await createCA(dir, `${name}-ca`, caName);
  const leaf = await createLeaf(dir, name, ca, { commonName: 'kube-apiserver', usage: 'client' });
  return { client: { cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, caFile: ca.certFile };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-caller-auth-test-'));
  const ca = await createCA(dir, 'serving-ca', 'jobs-storage-webhook-ca');
  await createLeaf(dir, 'tls', ca, { commonName: 'localhost', usage: 'server', ipAddresses: ['127.0.0.1'] });
  servingCa = readFileSync(ca.certFile);
  ({ client: apiserver, caFile: apiserverCa } = await clientOf('apiserver', 'kube-apiserver-client-ca'));
  ({ client: stranger, caFile: strangerCa } = await clientOf('stranger', 'some-other-ca'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function start(clientCaFile: string): Promise<{ handle: WebhookHandle; metrics: WebhookMetrics }> {
  const config = configSchema.parse({
    webhook: {
      host: '127.0.0.1',
      port: await freePort(),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      clientCaFile,
      certPollSeconds: 1,
      shutdownDelaySeconds: 0,
      shutdownTimeoutSeconds: 5,
    },
  });
  const metrics = createWebhookMetrics(new Registry());
  const handle = await runWebhook({
    config,
    logger: silentLogger(),
    metrics,
    phase: { current: () => 'runtime-truth', known: () => true },
  });
  return { handle, metrics };
}

/** Reviews the webhook decided (any decision): a refused caller's review is never decided. */
async function decided(metrics: WebhookMetrics): Promise<number> {
  return (await metrics.admissionRequests.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function directWrites(metrics: WebhookMetrics): Promise<number> {
  return (await metrics.directWrites.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function refused(metrics: WebhookMetrics, reason: string): Promise<number> {
  return (await metrics.admissionUnauthenticated.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

interface Reply {
  status: number;
  /** Whether the TLS connection the request went over resumed an earlier session. */
  reused: boolean;
}

/**
 * One HTTP/1.1 admission POST on a new connection (`session` offered for resumption), or through `agent`. `sessions`
 * receives every TLS session the server hands out on it.
 */
function h1Call(
  port: number,
  options: { client?: Client; session?: Buffer; agent?: https.Agent; sessions?: Buffer[]; tls12?: boolean },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: REVIEW_PATH,
        ca: servingCa,
        ...(options.client ?? {}),
        ...(options.session ? { session: options.session } : {}),
        ...(options.tls12 ? { maxVersion: 'TLSv1.2' as const } : {}),
        agent: options.agent ?? false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, reused: (res.socket as TLSSocket).isSessionReused() }),
        );
      },
    );
    req.on('socket', (socket) => socket.on('session', (s: Buffer) => options.sessions?.push(s)));
    req.on('error', reject);
    req.end(reviewText('cronjob-create-kubectl'));
  });
}

/** A TLS connection for h2 (ALPN h2 only), offering `session`; `sessions` receives the ones the server hands out. */
function h2Socket(port: number, options: { client?: Client; session?: Buffer; sessions?: Buffer[] }): TLSSocket {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: servingCa,
    ALPNProtocols: ['h2'],
    ...(options.client ?? {}),
    ...(options.session ? { session: options.session } : {}),
  });
  socket.on('session', (s: Buffer) => options.sessions?.push(s));
  return socket;
}

/** One h2 admission POST over a new h2 connection on `socket`; closes the connection after. */
async function h2Call(port: number, socket: TLSSocket): Promise<Reply> {
  const session: ClientHttp2Session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => socket });
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': REVIEW_PATH, 'content-type': 'application/json' });
      let code = 0;
      stream.on('response', (headers) => (code = Number(headers[':status'])));
      stream.resume();
      stream.on('end', () => resolve(code));
      stream.on('error', reject);
      session.on('error', reject);
      stream.end(reviewText('cronjob-create-kubectl'));
    });
    return { status, reused: socket.isSessionReused() };
  } finally {
    await new Promise<void>((resolve) => session.close(() => resolve()));
  }
}

function tally(replies: Reply[]): string {
  const served = replies.filter((r) => r.status === 200).length;
  const reused = replies.filter((r) => r.reused).length;
  return `${replies.length - served}/${replies.length} refused, ${served} served, isSessionReused true on ${reused}`;
}

test(`HTTP/1.1: a refused client resuming its TLS session is still refused (${ATTEMPTS} attempts, saved session and caching agent)`, async (t) => {
  const { handle, metrics } = await start(apiserverCa);
  const { port } = handle.address;
  const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
  try {
    const sessions: Buffer[] = [];
    assert.equal((await h1Call(port, { sessions })).status, 401);
    const saved = sessions.at(-1);
    assert.ok(saved, 'the server handed out a TLS session to resume');

    const withSession: Reply[] = [];
    for (let i = 0; i < ATTEMPTS; i += 1) withSession.push(await h1Call(port, { session: saved }));
    const throughAgent: Reply[] = [];
    for (let i = 0; i < ATTEMPTS; i += 1) throughAgent.push(await h1Call(port, { agent }));
    // TLS 1.2 (where node never called a resumed session without a certificate authorized): not resumed either.
    const tls12Sessions: Buffer[] = [];
    assert.equal((await h1Call(port, { sessions: tls12Sessions, tls12: true })).status, 401);
    const tls12Saved = tls12Sessions.at(-1);
    assert.ok(tls12Saved);
    const tls12: Reply[] = [];
    for (let i = 0; i < ATTEMPTS; i += 1) tls12.push(await h1Call(port, { session: tls12Saved, tls12: true }));
    t.diagnostic(`saved session: ${tally(withSession)}`);
    t.diagnostic(`caching https.Agent: ${tally(throughAgent)}`);
    t.diagnostic(`TLS 1.2 saved session: ${tally(tls12)}`);

    for (const reply of [...withSession, ...throughAgent, ...tls12])
      assert.deepEqual(reply, { status: 401, reused: false });
    assert.equal(await refused(metrics, 'no_certificate'), 2 + 3 * ATTEMPTS);
    assert.equal(await decided(metrics), 0, 'no refused review is decided');
    assert.equal(await directWrites(metrics), 0, 'no refused review counts as a direct write');
  } finally {
    agent.destroy();
    await handle.close();
  }
});

test(`h2: a refused client resuming its TLS session is still refused (${ATTEMPTS} attempts)`, async (t) => {
  const { handle, metrics } = await start(apiserverCa);
  const { port } = handle.address;
  try {
    const sessions: Buffer[] = [];
    assert.equal((await h2Call(port, h2Socket(port, { sessions }))).status, 401);
    const saved = sessions.at(-1);
    assert.ok(saved, 'the server handed out a TLS session to resume');

    const replies: Reply[] = [];
    for (let i = 0; i < ATTEMPTS; i += 1) replies.push(await h2Call(port, h2Socket(port, { session: saved })));
    t.diagnostic(`h2 saved session: ${tally(replies)}`);

    for (const reply of replies) assert.deepEqual(reply, { status: 401, reused: false });
    assert.equal(await refused(metrics, 'no_certificate'), 1 + ATTEMPTS);
    assert.equal(await decided(metrics), 0, 'no refused review is decided');
    assert.equal(await directWrites(metrics), 0, 'no refused review counts as a direct write');
  } finally {
    await handle.close();
  }
});

test('another CA’s certificate is refused, the client CA’s served; its sessions are not resumed, over HTTP/1.1 and h2', async () => {
  const { handle, metrics } = await start(apiserverCa);
  const { port } = handle.address;
  try {
    assert.equal((await h1Call(port, { client: stranger })).status, 401);
    assert.equal((await h2Call(port, h2Socket(port, { client: stranger }))).status, 401);
    assert.equal(await refused(metrics, 'untrusted_certificate'), 2);

    const h1Sessions: Buffer[] = [];
    assert.deepEqual(await h1Call(port, { client: apiserver, sessions: h1Sessions }), { status: 200, reused: false });
    const h2Sessions: Buffer[] = [];
    assert.deepEqual(await h2Call(port, h2Socket(port, { client: apiserver, sessions: h2Sessions })), {
      status: 200,
      reused: false,
    });
    const h1Saved = h1Sessions.at(-1);
    const h2Saved = h2Sessions.at(-1);
    assert.ok(h1Saved && h2Saved);
    // The authenticated client coming back with its session: a full handshake again, and served.
    assert.deepEqual(await h1Call(port, { client: apiserver, session: h1Saved }), { status: 200, reused: false });
    assert.deepEqual(await h2Call(port, h2Socket(port, { client: apiserver, session: h2Saved })), {
      status: 200,
      reused: false,
    });
    // Someone else offering that session without the certificate: not resumed, refused.
    assert.deepEqual(await h1Call(port, { session: h1Saved }), { status: 401, reused: false });
    assert.deepEqual(await h2Call(port, h2Socket(port, { session: h2Saved })), { status: 401, reused: false });
    assert.equal(await refused(metrics, 'no_certificate'), 2);
    assert.equal(await decided(metrics), 4);
  } finally {
    await handle.close();
  }
});

test('h2: an open session verified against the previous client CA is refused once the CA is replaced', async () => {
  const clientCaFile = join(dir, 'rotating-client-ca.crt');
  writeFileSync(clientCaFile, readFileSync(apiserverCa));
  const { handle } = await start(clientCaFile);
  const { port } = handle.address;
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: servingCa, ALPNProtocols: ['h2'], ...apiserver });
  const post = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': REVIEW_PATH, 'content-type': 'application/json' });
      let code = 0;
      stream.on('response', (headers) => (code = Number(headers[':status'])));
      stream.resume();
      stream.on('end', () => resolve(code));
      stream.on('error', reject);
      stream.end(reviewText('cronjob-create-kubectl'));
    });
  try {
    assert.equal(await post(), 200);
    writeFileSync(clientCaFile, readFileSync(strangerCa));
    const until = Date.now() + 10_000;
    while ((await post()) === 200) {
      assert.ok(Date.now() < until, 'the replaced client CA still admits the old certificate');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await post(), 401);
  } finally {
    session.close();
    await handle.close();
  }
});

test('callerAuthenticated refuses a resumed session without a certificate even where the server resumes sessions', async (t) => {
  // A plain TLS server with node's defaults (session tickets on), asking for a certificate as the webhook does: the
  // rule alone must hold where resumption is not switched off.
  const clientCas = parseCertificateBundle(readFileSync(apiserverCa));
  const strangerCas = parseCertificateBundle(readFileSync(strangerCa));
  const seen: Array<{ authorized: boolean; reused: boolean; ours: boolean; theirs: boolean }> = [];
  const server = tls.createServer(
    {
      cert: readFileSync(join(dir, 'tls.crt')),
      key: readFileSync(join(dir, 'tls.key')),
      ca: readFileSync(apiserverCa),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => {
      seen.push({
        authorized: socket.authorized,
        reused: socket.isSessionReused(),
        ours: callerAuthenticated(socket, clientCas),
        theirs: callerAuthenticated(socket, strangerCas),
      });
      socket.end('bye');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const connect = (client?: Client, session?: Buffer): Promise<Buffer | undefined> =>
    new Promise((resolve, reject) => {
      let handedOut: Buffer | undefined;
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: servingCa,
        ...(client ?? {}),
        ...(session ? { session } : {}),
      });
      socket.on('session', (s: Buffer) => (handedOut = s));
      socket.resume();
      socket.on('end', () => resolve(handedOut));
      socket.on('error', reject);
    });
  try {
    const anonymous = await connect();
    await connect(undefined, anonymous);
    const trusted = await connect(apiserver);
    await connect(apiserver, trusted);
    await connect(stranger);
    t.diagnostic(`server-side view (authorized, reused): ${JSON.stringify(seen)}`);
    assert.deepEqual(
      seen.map(({ reused, ours, theirs }) => ({ reused, ours, theirs })),
      [
        { reused: false, ours: false, theirs: false },
        // The resumed anonymous session: node 20.20 and 22 say `authorized` here; the rule does not.
        { reused: true, ours: false, theirs: false },
        { reused: false, ours: true, theirs: false },
        // A resumed session of a client that did present the client CA's certificate carries that certificate.
        { reused: true, ours: true, theirs: false },
        { reused: false, ours: false, theirs: false },
      ],
    );
    assert.equal(callerAuthenticated(undefined, clientCas), false);
    assert.equal(
      parseCertificateBundle(Buffer.concat([readFileSync(apiserverCa), readFileSync(strangerCa)])).length,
      2,
    );
    assert.ok(new X509Certificate(apiserver.cert).checkIssued(clientCas[0] as X509Certificate));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
