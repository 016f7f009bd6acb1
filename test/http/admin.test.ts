import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { before, describe, test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import request from 'supertest';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import { createAdminApp, createProbeApp, listenSyncHttp } from '../../src/admin/app.js';
import type { AdminSource } from '../../src/admin/app.js';
import { createTokenVerifier } from '../../src/admin/auth.js';
import type { ToolPlan } from '../../src/sync/reconcile.js';
import { preflightReport, preflightTool } from '../../src/preflight/preflight.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../src/runtime/settings.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';

const ISSUER = 'https://kubernetes.default.svc';
const AUDIENCE = 'jobs-storage-admin';
const ADMIN = 'system:serviceaccount:jobs-storage:admin';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const plan: ToolPlan = {
  tool: 'alpha',
  backfill: [],
  counts: { onlyInRuntime: 1, onlyInStorage: 0, outOfSync: 1, foreign: 0 },
  jobs: [
    {
      name: 'daily',
      type: 'scheduled',
      inRuntime: true,
      inStorage: false,
      state: 'only-in-runtime',
      action: 'backfill',
      listedByApi: true,
    },
    {
      name: 'bot',
      type: 'continuous',
      inRuntime: true,
      inStorage: true,
      state: 'out-of-sync',
      action: 'none',
      listedByApi: true,
      diff: [{ field: 'replicas', storage: 1, runtime: 3 }],
    },
  ],
};

const source: AdminSource = {
  synced: true,
  status: () => ({
    phase: 'storage-truth',
    identity: 'sync-0',
    leader: true,
    synced: true,
    lastSyncAt: '2026-11-24T12:00:00.000Z',
    lastSyncSeconds: 0.5,
    totals: {
      tools: 1,
      runtimeJobs: 2,
      storageJobs: 1,
      onlyInRuntime: 1,
      onlyInStorage: 0,
      outOfSync: 1,
      foreign: 0,
      backfilled: 0,
    },
  }),
  toolPlan: async (tool) => Promise.resolve(tool === 'alpha' ? plan : undefined),
};

describe('admin API', () => {
  let signKey: PrivateKey;
  let otherKey: PrivateKey;
  let app: ReturnType<typeof createAdminApp>;
  let probe: ReturnType<typeof createProbeApp>;
  let jwk: JWK;

  /** A token as `kubectl create token` makes one; `exp: null` leaves the expiry out. */
  const token = (
    o: { sub?: string; aud?: string; exp?: string | number | null; iat?: number; key?: PrivateKey; iss?: string } = {},
  ) => {
    const jwt = new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(o.sub ?? ADMIN)
      .setIssuer(o.iss ?? ISSUER)
      .setAudience(o.aud ?? AUDIENCE)
      .setIssuedAt(o.iat);
    if (o.exp !== null) jwt.setExpirationTime(o.exp ?? '10m');
    return jwt.sign(o.key ?? signKey);
  };

  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    signKey = pair.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const verifier = createTokenVerifier({ audience: AUDIENCE, issuer: ISSUER, jwks: { keys: [jwk] } });
    const metrics = createSyncMetrics(new Registry());
    metrics.onlyInRuntime.set({ tool_name: 'alpha' }, 1);
    app = createAdminApp({ source, metrics, verifier, allowedSubjects: [ADMIN], logger: silentLogger() });
    probe = createProbeApp({ source, metrics });
  });

  test('status with an allowed token', async () => {
    const res = await request(app)
      .get('/admin/v1/status')
      .set('authorization', `Bearer ${await token()}`)
      .expect(200);
    assert.equal(res.body.phase, 'storage-truth');
    assert.equal(res.body.leader, true);
    assert.equal(res.body.totals.onlyInRuntime, 1);
  });

  test('per-tool report lists each job, where it exists, what the API lists, and the drift', async () => {
    const res = await request(app)
      .get('/admin/v1/tools/alpha')
      .set('authorization', `Bearer ${await token()}`)
      .expect(200);
    assert.equal(res.body.tool, 'alpha');
    assert.deepEqual(
      res.body.jobs.map((j: { name: string }) => j.name),
      ['daily', 'bot'],
    );
    assert.deepEqual(res.body.jobs[1].diff, [{ field: 'replicas', storage: 1, runtime: 3 }]);
  });

  test('an unknown tool gives an empty report, a bad name a 400', async () => {
    const auth = `Bearer ${await token()}`;
    const res = await request(app).get('/admin/v1/tools/gamma').set('authorization', auth).expect(200);
    assert.deepEqual(res.body.jobs, []);
    await request(app).get('/admin/v1/tools/Not_A_Tool').set('authorization', auth).expect(400);
  });

  test('preflight: the report of the named tools, with the same auth; a bad tool name is a 400', async () => {
    const asked: Array<readonly string[]> = [];
    const daily = scheduledJob('alpha', 'daily');
    const live = workloadsOf(daily).map((o) => ({
      ...o,
      metadata: { ...(o['metadata'] as object), namespace: 'tool-alpha' },
    }));
    const withPreflight = createAdminApp({
      source,
      metrics: createSyncMetrics(new Registry()),
      verifier: createTokenVerifier({ audience: AUDIENCE, issuer: ISSUER, jwks: { keys: [jwk] } }),
      allowedSubjects: [ADMIN],
      logger: silentLogger(),
      preflight: async (tools) => {
        asked.push(tools);
        const runtime = DEFAULT_RUNTIME_SETTINGS;
        return Promise.resolve(preflightReport([preflightTool('alpha', [crOf(daily)], live, { runtime })]));
      },
    });
    const auth = `Bearer ${await token()}`;
    const res = await request(withPreflight)
      .get('/admin/v1/preflight?tool=alpha')
      .set('authorization', auth)
      .expect(200);
    assert.equal(res.body.exitCode, 0);
    assert.deepEqual(
      res.body.tools[0].jobs.map((j: { job: string; verdict: string }) => [j.job, j.verdict]),
      [['daily', 'same']],
    );
    await request(withPreflight).get('/admin/v1/preflight?tool=a&tool=b').set('authorization', auth).expect(200);
    await request(withPreflight).get('/admin/v1/preflight').set('authorization', auth).expect(200);
    assert.deepEqual(asked, [['alpha'], ['a', 'b'], []]);
    await request(withPreflight).get('/admin/v1/preflight?tool=Not_A_Tool').set('authorization', auth).expect(400);
    const anonymous = await request(withPreflight).get('/admin/v1/preflight').expect(401);
    assert.match(anonymous.body.error, /bearer token is required/);
    const other = await token({ sub: 'system:serviceaccount:tool-alpha:default' });
    await request(withPreflight).get('/admin/v1/preflight').set('authorization', `Bearer ${other}`).expect(403);
    assert.equal(asked.length, 3, 'refused requests never reach the cluster');
    // a sync built without a preflight source says so
    await request(app).get('/admin/v1/preflight').set('authorization', auth).expect(404);
  });

  test('preflight: a failed read is a 502 that names no internals', async () => {
    const failing = createAdminApp({
      source,
      metrics: createSyncMetrics(new Registry()),
      verifier: createTokenVerifier({ audience: AUDIENCE, issuer: ISSUER, jwks: { keys: [jwk] } }),
      allowedSubjects: [ADMIN],
      logger: silentLogger(),
      preflight: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.1:6443')),
    });
    const res = await request(failing)
      .get('/admin/v1/preflight')
      .set('authorization', `Bearer ${await token()}`)
      .expect(502);
    assert.doesNotMatch(res.body.error, /ECONNREFUSED/);
  });

  const refused: Array<[string, () => Promise<string | undefined>, number, RegExp]> = [
    ['no token', async () => undefined, 401, /bearer token is required/],
    ['expired token', () => token({ exp: Math.floor(Date.now() / 1000) - 3600 }), 401, /expired/],
    ['wrong audience', () => token({ aud: 'kubernetes' }), 401, /claim 'aud'/],
    ['wrong issuer', () => token({ iss: 'https://elsewhere' }), 401, /claim 'iss'/],
    ['signed by another key', () => token({ key: otherKey }), 401, /not signed by the cluster issuer/],
    [
      'unsigned token',
      async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const now = Math.floor(Date.now() / 1000);
        return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: ADMIN, aud: AUDIENCE, iss: ISSUER, exp: now + 600 })}.`;
      },
      401,
      /not (valid|allowed)/,
    ],
    ['garbage', async () => 'not-a-jwt', 401, /not valid/],
    ['a token without expiry', () => token({ exp: null }), 401, /no 'exp' claim/],
    [
      'a token issued too long ago, though not expired',
      () => token({ iat: Math.floor(Date.now() / 1000) - 7200, exp: '1y' }),
      401,
      /expired/,
    ],
    [
      'a valid token of another subject',
      () => token({ sub: 'system:serviceaccount:tool-alpha:default' }),
      403,
      /may not use the admin API/,
    ],
  ];
  for (const [name, make, status, message] of refused) {
    test(`refuses ${name} with ${status}`, async () => {
      const t = await make();
      const req = request(app).get('/admin/v1/status');
      const res = await (t ? req.set('authorization', `Bearer ${t}`) : req).expect(status);
      assert.match(res.body.error, message);
    });
  }

  test('metrics, health and readiness need no token', async () => {
    const metrics = await request(probe).get('/metrics').expect(200);
    assert.match(metrics.text, /toolforge_jobs_only_in_runtime\{tool_name="alpha"\} 1/);
    await request(probe).get('/healthz').expect(200);
    await request(probe).get('/readyz').expect(200);
  });

  test('the probe listener never serves the admin API, and the admin listener serves nothing else', async () => {
    const t = await token();
    await request(probe).get('/admin/v1/status').set('authorization', `Bearer ${t}`).expect(404);
    await request(probe).get('/admin/v1/tools/alpha').set('authorization', `Bearer ${t}`).expect(404);
    await request(app).get('/metrics').expect(404);
  });

  test('the admin API listens on loopback only; probes and metrics on every interface', async () => {
    const servers = await listenSyncHttp(
      configSchema.parse({ sync: { host: '0.0.0.0', port: 0 }, admin: { port: 0 } }),
      { probe, admin: app },
    );
    try {
      const probeAddress = servers.probe.address() as AddressInfo;
      const adminAddress = servers.admin.address() as AddressInfo;
      assert.equal(probeAddress.address, '0.0.0.0');
      assert.equal(adminAddress.address, '127.0.0.1');
      const auth = { authorization: `Bearer ${await token()}` };
      const viaLoopback = await fetch(`http://127.0.0.1:${adminAddress.port}/admin/v1/status`, { headers: auth });
      assert.equal(viaLoopback.status, 200);
      // Every non-loopback address of this host: the admin port is closed there, the probe port open.
      const external = Object.values(networkInterfaces())
        .flat()
        .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
        .map((i) => i!.address);
      for (const address of external) {
        await assert.rejects(fetch(`http://${address}:${adminAddress.port}/admin/v1/status`, { headers: auth }));
        assert.equal((await fetch(`http://${address}:${probeAddress.port}/healthz`)).status, 200);
      }
    } finally {
      await servers.close();
    }
  });
});

describe('admin API listener configuration', () => {
  test('a non-loopback admin.host is refused', () => {
    for (const host of ['0.0.0.0', '10.0.0.5', '::', 'sync.example.org']) {
      const parsed = configSchema.safeParse({ admin: { host } });
      assert.equal(parsed.success, false, host);
      assert.match(String(parsed.error?.issues[0]?.message), /loopback/);
    }
    for (const host of ['127.0.0.1', '::1', 'localhost'])
      assert.equal(configSchema.safeParse({ admin: { host } }).success, true);
  });

  test('admin.port must differ from sync.port', () => {
    const parsed = configSchema.safeParse({ sync: { port: 9100 }, admin: { port: 9100 } });
    assert.equal(parsed.success, false);
    assert.deepEqual(parsed.error?.issues[0]?.path, ['admin', 'port']);
  });
});
