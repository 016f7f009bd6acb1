import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { freePort } from '../../scripts/control-plane/process.js';
import { main } from '../../src/cli.js';
import { startStandInApi } from './stand-in-api.js';
import type { StandInApi } from './stand-in-api.js';

/**
 * `import` and `report` against a local HTTPS server standing in for the API server: refusals (401, 403) end them
 * at once naming who was refused what; an unreachable server ends them after `oneShot.unreachableSeconds` with one
 * line. Before, each case retried for about 300 s.
 */

const SYNC_SA = 'system:serviceaccount:jobs-storage:jobs-storage-sync';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headersDistinct'];
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
}

/** SelfSubjectReview answered with this user (or the impersonated one), lists empty, watches held open. */
function apiServer(username: string, overrides: Handler = () => undefined): Handler {
  return (req, res, url) => {
    overrides(req, res, url);
    if (res.headersSent) return;
    if (req.method === 'POST' && url.pathname.endsWith('/selfsubjectreviews')) {
      const as = req.headersDistinct['impersonate-user']?.[0];
      const groups = req.headersDistinct['impersonate-group'] ?? ['system:authenticated'];
      json(res, 201, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
        status: { userInfo: { username: as ?? username, groups } },
      });
      return;
    }
    if (req.method === 'GET' && url.pathname.includes('/configmaps/')) {
      status(res, 404, 'NotFound', 'configmaps "jobs-storage-phase" not found');
      return;
    }
    if (req.method === 'GET' && url.searchParams.get('watch')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return;
    }
    if (req.method === 'GET') {
      json(res, 200, { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '1' }, items: [] });
      return;
    }
    status(res, 405, 'MethodNotAllowed', 'not served here');
  };
}

describe('one-shot commands fail fast', { timeout: 60_000 }, () => {
  let standIn: StandInApi | undefined;
  let dir: string;
  let handler: Handler = () => undefined;
  let seen: Seen[] = [];
  let configFile: string;
  let unreachableConfig: string;

  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const started = Date.now();
    const code = await main([...args, '--config', configFile], {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    });
    return { code, out, err, seconds: (Date.now() - started) / 1000 };
  };

  before(async () => {
    const api = await startStandInApi('one-shot', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      seen.push({ method: req.method ?? '', path: url.pathname, headers: req.headersDistinct });
      handler(req, res, url);
    });
    standIn = api;
    dir = api.dir;
    const kubeconfig = (file: string, address: string) =>
      writeFileSync(
        join(dir, file),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': 'ops',
          contexts: [{ name: 'ops', context: { cluster: 'test', user: 'ops-user' } }],
          clusters: [
            {
              name: 'test',
              cluster: {
                server: address,
                'certificate-authority-data': api.ca.toString('base64'),
              },
            },
          ],
          users: [{ name: 'ops-user', user: { token: 'a-token' } }],
        }),
      );
    kubeconfig('kubeconfig', api.address);
    // A port nobody listens on: connections are refused.
    kubeconfig('unreachable', `https://127.0.0.1:${await freePort()}`);
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ logLevel: 'silent', kubeconfig: join(dir, 'kubeconfig') }));
    unreachableConfig = join(dir, 'unreachable.json');
    writeFileSync(
      unreachableConfig,
      JSON.stringify({ kubeconfig: join(dir, 'unreachable'), oneShot: { unreachableSeconds: 2 } }),
    );
  });
  beforeEach(() => {
    seen = [];
  });
  after(() => standIn?.close());

  test('report without RBAC stops at the first 403, naming the user and what was refused', async () => {
    handler = apiServer('system:serviceaccount:default:nobody', (req, res, url) => {
      if (req.method === 'GET' && !url.pathname.includes('/namespaces/'))
        status(
          res,
          403,
          'Forbidden',
          'forbidden: User "system:serviceaccount:default:nobody" cannot list resource at the cluster scope',
        );
    });
    const res = await cli(['report']);
    assert.equal(res.code, 1);
    assert.ok(res.seconds < 5, `took ${res.seconds} s`);
    assert.equal(res.err.trim().split('\n').length, 1, res.err);
    assert.match(
      res.err,
      /report stopped: user "system:serviceaccount:default:nobody" may not list [a-z.-]+ at the cluster scope \(403 Forbidden/,
    );
    assert.match(res.err, /report needs get, list and watch on/);
    assert.match(res.err, new RegExp(`--as ${SYNC_SA}`));
  });

  test('credentials the API server does not accept (401) stop it at once, naming the kubeconfig user', async () => {
    handler = (_req, res) => status(res, 401, 'Unauthorized', 'Unauthorized');
    const res = await cli(['report']);
    assert.equal(res.code, 1);
    assert.ok(res.seconds < 5, `took ${res.seconds} s`);
    assert.match(
      res.err,
      /did not accept the credentials of kubeconfig user "ops-user" \(.*kubeconfig\) \(401 Unauthorized\)/,
    );
    assert.equal(seen.length, 1, 'nothing but the SelfSubjectReview was sent');
  });

  test('import by a cluster admin who is not a storage writer writes nothing and says which identity to use', async () => {
    handler = apiServer('ops-admin');
    const res = await cli(['import']);
    assert.equal(res.code, 1);
    assert.match(res.err, /import writes job CRs, .* "ops-admin" is neither; run it as the sync's ServiceAccount/);
    assert.match(res.err, new RegExp(`'jobs-storage import --as ${SYNC_SA}'`));
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.path}`),
      ['POST /apis/authentication.k8s.io/v1/selfsubjectreviews'],
    );
  });

  test('import --as the sync ServiceAccount impersonates it on every request and runs', async () => {
    handler = apiServer('ops-admin');
    const res = await cli(['import', '--as', SYNC_SA, '--as-group', 'system:serviceaccounts', 'system:authenticated']);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, /created 0, already present 0, skipped 0, failed 0/);
    assert.ok(seen.length > 1);
    for (const s of seen) {
      assert.deepEqual(s.headers['impersonate-user'], [SYNC_SA], `${s.method} ${s.path}`);
      assert.deepEqual(s.headers['impersonate-group'], ['system:serviceaccounts', 'system:authenticated']);
    }
  });

  test('a denied impersonation stops it at once', async () => {
    handler = (_req, res) =>
      status(res, 403, 'Forbidden', 'users "x" is forbidden: User "ops-admin" cannot impersonate resource "users"');
    const res = await cli(['report', '--as', 'x']);
    assert.equal(res.code, 1);
    assert.match(res.err, /refused the impersonation \(403 Forbidden\)/);
  });

  test('--as-group without --as is a usage error', async () => {
    const res = await cli(['report', '--as-group', 'system:masters']);
    assert.equal(res.code, 2);
    assert.match(res.err, /--as-group needs --as/);
  });

  test('an API server lost after start: it gives up after oneShot.unreachableSeconds instead of retrying', async () => {
    handler = apiServer('ops-admin', (req) => {
      if (req.method === 'GET') req.socket.destroy();
    });
    writeFileSync(
      configFile,
      JSON.stringify({ logLevel: 'silent', kubeconfig: join(dir, 'kubeconfig'), oneShot: { unreachableSeconds: 2 } }),
    );
    try {
      const res = await cli(['report']);
      assert.equal(res.code, 1);
      assert.ok(res.seconds >= 2 && res.seconds < 8, `took ${res.seconds} s`);
      assert.match(
        res.err,
        /^jobs-storage: cannot reach the API server at https:\/\/127\.0\.0\.1:\d+ .*gave up after 2 s/,
      );
    } finally {
      writeFileSync(configFile, JSON.stringify({ logLevel: 'silent', kubeconfig: join(dir, 'kubeconfig') }));
    }
  });

  test('an unreachable API server: exit 1 after oneShot.unreachableSeconds with one line on stderr, nothing else', async () => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src', 'main.ts'), 'report', '--config', unreachableConfig],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const seconds = (Date.now() - started) / 1000;
    assert.equal(code, 1);
    assert.ok(seconds >= 2 && seconds < 15, `took ${seconds} s`);
    assert.deepEqual(stderr.trim().split('\n').length, 1, stderr);
    assert.match(
      stderr,
      /cannot reach the API server at https:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); gave up after 2 s/,
    );
  });
});
