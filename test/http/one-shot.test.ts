import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { freePort } from '../../scripts/control-plane/process.js';
import { main } from '../../src/cli.js';
import type { CliIo } from '../../src/cli/io.js';
import type { PhaseConfigMap } from '../../src/phase/store.js';
import { startStandInApi } from './stand-in-api.js';
import type { StandInApi } from './stand-in-api.js';

/**
 * The cluster commands against a local HTTPS server standing in for the API server: refusals (401, 403) end them
 * at once naming who was refused what; an unreachable server ends every one of them after
 * `oneShot.unreachableSeconds` with the same line. Before, import and report retried for about 300 s and the others
 * stopped at once with `unexpected error: connect ECONNREFUSED`.
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

  const cli = async (args: string[], io: Partial<CliIo> = {}, config = configFile) => {
    let out = '';
    let err = '';
    const started = Date.now();
    const code = await main([...args, '--config', config], {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      ...io,
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

  test('every cluster command against a closed port: the same budget and the same one line, never a raw ECONNREFUSED', async () => {
    const commands: Array<[string[], number]> = [
      [['report'], 1],
      [['import'], 1],
      [['phase', 'get'], 1],
      [['phase', 'set', 'storage-truth'], 1],
      [['migrate', '--tool', 'alpha'], 1],
      [['restore', '--tool', 'alpha'], 1],
      [['preflight'], 2],
    ];
    const results = await Promise.all(commands.map(([args]) => cli(args, {}, unreachableConfig)));
    for (const [i, [args, code]] of commands.entries()) {
      const res = results[i];
      assert.ok(res);
      const what = `${args.join(' ')}: ${res.err}`;
      assert.equal(res.code, code, what);
      assert.ok(res.seconds >= 2 && res.seconds < 8, `${what} took ${res.seconds} s`);
      assert.equal(res.err.trim().split('\n').length, 1, what);
      assert.match(
        res.err,
        /^jobs-storage: cannot reach the API server at https:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); gave up after 2 s/,
        what,
      );
      assert.equal(res.out, '', what);
    }
  });

  test('every cluster command refused (403) stops at once with one line naming the API identity and the request', async () => {
    handler = apiServer('alice', (req, res, url) => {
      if (req.method === 'GET')
        status(res, 403, 'Forbidden', `forbidden: User "alice" cannot list resource at ${url.pathname}`);
    });
    const commands: Array<[string[], RegExp, number]> = [
      [
        ['phase', 'get'],
        /phase get stopped: user "alice" may not get configmaps jobs-storage-phase in namespace jobs-storage \(403 Forbidden/,
        1,
      ],
      [
        ['phase', 'set', 'storage-truth'],
        /phase set stopped: user "alice" may not get configmaps jobs-storage-phase/,
        1,
      ],
      [['migrate', '--tool', 'alpha'], /migrate stopped: user "alice" may not get configmaps jobs-storage-phase/, 1],
      [
        ['restore', '--tool', 'alpha'],
        /restore stopped: user "alice" may not list [a-z.-]+ in namespace tool-alpha \(403 Forbidden/,
        1,
      ],
      [['preflight'], /preflight stopped: user "alice" may not list [a-z.-]+ at the cluster scope \(403 Forbidden/, 2],
      [
        ['report'],
        /report stopped: user "alice" may not list [a-z.-]+ (at the cluster scope|in namespace jobs-storage) \(403 Forbidden/,
        1,
      ],
    ];
    for (const [args, line, code] of commands) {
      const res = await cli(args);
      const what = `${args.join(' ')}: ${res.err}`;
      assert.equal(res.code, code, what);
      assert.ok(res.seconds < 5, `${what} took ${res.seconds} s`);
      assert.equal(res.err.trim().split('\n').length, 1, what);
      assert.match(res.err, new RegExp(`^jobs-storage: ${line.source}`), what);
    }
  });

  test('an empty kubeconfig is a configuration error at once (exit 2), not a retry', async () => {
    const empty = join(dir, 'empty-kubeconfig');
    writeFileSync(empty, '');
    for (const args of [['report'], ['phase', 'get'], ['import']]) {
      const res = await cli([...args, '--kubeconfig', empty]);
      assert.equal(res.code, 2, res.err);
      assert.ok(res.seconds < 2, `took ${res.seconds} s`);
      assert.equal(res.err, `jobs-storage: invalid configuration: kubeconfig ${empty}: is empty\n`);
    }
  });

  test('--context picks the kubeconfig context; --kubeconfig overrides the configured one', async () => {
    handler = apiServer('ops-admin');
    const two = join(dir, 'two-contexts');
    const { address, ca } = standIn as StandInApi;
    writeFileSync(
      two,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'gone',
        contexts: [
          { name: 'gone', context: { cluster: 'gone', user: 'u' } },
          { name: 'live', context: { cluster: 'live', user: 'u' } },
        ],
        clusters: [
          { name: 'gone', cluster: { server: `https://127.0.0.1:${await freePort()}` } },
          { name: 'live', cluster: { server: address, 'certificate-authority-data': ca.toString('base64') } },
        ],
        users: [{ name: 'u', user: { token: 'a-token' } }],
      }),
    );
    const res = await cli(
      ['--kubeconfig', two, '--context', 'live', 'phase', 'get', '-o', 'json'],
      {},
      unreachableConfig,
    );
    assert.equal(res.code, 0, res.err);
    assert.deepEqual(JSON.parse(res.out), { phase: 'runtime-truth', stored: false, history: [] });
    const missing = await cli(['phase', 'get', '--kubeconfig', two, '--context', 'nowhere']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /^jobs-storage: invalid configuration: kubeconfig .*: context 'nowhere' not found\n$/);
  });

  test('no log lines without -v, on a terminal or not; -v adds them on stderr, never on stdout', async () => {
    handler = apiServer('ops-admin');
    const chatty = join(dir, 'chatty.json');
    writeFileSync(chatty, JSON.stringify({ logLevel: 'info', kubeconfig: join(dir, 'kubeconfig') }));
    for (const stderrIsTTY of [true, false]) {
      const quiet = await cli(['report'], { stderrIsTTY }, chatty);
      assert.equal(quiet.code, 0, quiet.err);
      assert.equal(quiet.err, '', `stderrIsTTY ${stderrIsTTY}`);
    }
    const verbose = await cli(['report', '-v'], { stderrIsTTY: true }, chatty);
    assert.equal(verbose.code, 0, verbose.err);
    const lines = verbose.err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; command: string });
    assert.ok(lines.some((l) => l.msg === 'running as'));
    assert.ok(lines.every((l) => l.command === 'report'));
    assert.ok(!lines.some((l) => /phase changed/.test(l.msg)), 'the first read of the phase is not a change');
    assert.ok(!verbose.out.includes('"level"'));
  });

  test("phase set records the caller's API identity; enforce asks first and needs --yes without a terminal", async () => {
    let stored: PhaseConfigMap | undefined;
    const base = apiServer('alice@example');
    handler = (req, res, url) => {
      if (!url.pathname.includes('/configmaps')) return base(req, res, url);
      if (req.method === 'GET') {
        if (stored) json(res, 200, stored);
        else status(res, 404, 'NotFound', 'not found');
        return;
      }
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        stored = JSON.parse(body) as PhaseConfigMap;
        stored.metadata.resourceVersion = String(Number(stored.metadata.resourceVersion ?? '0') + 1);
        json(res, req.method === 'POST' ? 201 : 200, stored);
      });
    };
    const set = await cli(['phase', 'set', 'storage-truth', '--reason', 'why', '-o', 'json']);
    assert.equal(set.code, 0, set.err);
    const change = JSON.parse(set.out) as { phase: string; previous: null; by: string; reason: string; at: string };
    assert.deepEqual(
      { ...change, at: '' },
      { phase: 'storage-truth', previous: null, at: '', by: 'alice@example', reason: 'why' },
    );

    const piped = await cli(['phase', 'set', 'enforce']);
    assert.equal(piped.code, 2);
    assert.match(piped.err, /^jobs-storage: phase set enforce: .*stdin is not a terminal to confirm on: add --yes/);
    const asked: string[] = [];
    const declined = await cli(['phase', 'set', 'enforce'], {
      stdinIsTTY: true,
      ask: async (q) => (asked.push(q), 'n'),
    });
    assert.equal(declined.code, 1);
    assert.match(asked[0] ?? '', /^Switch the phase from storage-truth to enforce\? .*\[y\/N\] $/);
    assert.match(declined.err, /phase not changed/);
    assert.equal(stored?.data?.['phase'], 'storage-truth');
    const confirmed = await cli(['phase', 'set', 'enforce'], { stdinIsTTY: true, ask: async () => 'y' });
    assert.equal(confirmed.code, 0, confirmed.err);
    assert.equal(confirmed.out, 'phase: storage-truth → enforce (by alice@example)\n');
    const get = await cli(['phase', 'get', '-o', 'yaml']);
    assert.match(get.out, /^phase: enforce\nstored: true\nhistory:\n/);
    assert.match(get.out, /by: alice@example/);
    assert.equal(stored?.data?.['phase'], 'enforce');
    stored = undefined;
    const yes = await cli(['phase', 'set', 'enforce', '--yes']);
    assert.equal(yes.code, 0, yes.err);
  });
});
