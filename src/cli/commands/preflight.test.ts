import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { main } from '../../cli.js';
import {
  formatPreflightJson,
  formatPreflightTable,
  preflightReport,
  preflightTool,
} from '../../preflight/preflight.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../runtime/settings.js';
import { crOf, scheduledJob, workloadsOf } from '../../../scripts/control-plane/jobs.js';
import { reportWriter } from './preflight.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

/** Exit codes as `kubectl diff`'s: 1 is kept for "some job would change", so every failure to read is 2. */
describe('jobs-storage preflight: failures are exit 2, never 1', () => {
  test('a tool name that cannot be a namespace', async () => {
    const res = await cli(['preflight', '--tool', 'Not_A_Tool']);
    assert.equal(res.code, 2);
    assert.match(res.err, /'Not_A_Tool' is not a tool name/);
    assert.equal(res.out, '');
  });

  test('a configuration file that does not exist', async () => {
    const res = await cli(['preflight', '--config', join(tmpdir(), 'no-such-dir', 'config.yaml')]);
    assert.equal(res.code, 2);
    assert.match(res.err, /^jobs-storage: invalid configuration: .*config\.yaml/);
    assert.equal(res.err.split('\n').length, 2, res.err);
  });

  test('an API server that does not answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-preflight-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const config = join(dir, 'config.yaml');
    writeFileSync(config, JSON.stringify({ logLevel: 'silent', kubeconfig, oneShot: { unreachableSeconds: 1 } }));
    // The same line for both, after the same budget: preflight's exit code for it is 2, restore's 1.
    const line =
      /^jobs-storage: cannot reach the API server at https:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\); gave up after 1 s \(oneShot\.unreachableSeconds\)\n$/;
    const res = await cli(['preflight', '--config', config]);
    assert.equal(res.code, 2);
    assert.match(res.err, line);
    const restore = await cli(['restore', '--tool', 'alpha', '--config', config]);
    assert.equal(restore.code, 1);
    assert.match(restore.err, line);
  });
});

describe('jobs-storage preflight: the report written tool by tool', () => {
  const runtime = DEFAULT_RUNTIME_SETTINGS;
  const changed = scheduledJob('beta', 'nightly');
  const live = workloadsOf({ ...changed, cmd: './old.sh' });
  const tools = [
    preflightTool('alpha', [crOf(scheduledJob('alpha', 'daily'))], workloadsOf(scheduledJob('alpha', 'daily')), {
      runtime,
    }),
    preflightTool('beta', [crOf(changed), crOf(scheduledJob('beta', 'lost'))], live, { runtime }),
  ];
  const report = preflightReport(tools);

  for (const [output, format] of [
    ['json', formatPreflightJson],
    ['table', formatPreflightTable],
  ] as const) {
    for (const [what, some] of [
      ['two tools', tools],
      ['no tool', []],
    ] as const) {
      test(`${output}, ${what}: the same text as the report held whole`, () => {
        let out = '';
        const writer = reportWriter(output, { stdout: (t) => (out += t), stderr: () => undefined });
        for (const t of some) writer.tool(t);
        const whole = preflightReport(some);
        writer.end(whole.totals);
        assert.equal(out, format(whole));
        if (output === 'json') assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(whole)));
      });
    }
  }
  test('the report of these tools says what it should', () => {
    assert.equal(report.exitCode, 1);
    assert.deepEqual(report.totals, {
      jobs: 2,
      same: 1,
      cosmetic: 0,
      functional: 1,
      errors: 0,
      onlyInRuntime: 0,
      onlyInStorage: 1,
    });
  });
});
