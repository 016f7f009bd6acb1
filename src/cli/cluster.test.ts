import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../config/schema.js';
import { ConfigError, UsageError } from '../errors.js';
import { cliLogLevel, impersonation, refusalError, withKubeconfig } from './cluster.js';

test('log lines only with -v, terminal or not: debug, or trace when configured', () => {
  const table: Array<[boolean, string, string]> = [
    [false, 'info', 'silent'],
    [false, 'trace', 'silent'],
    [true, 'info', 'debug'],
    [true, 'warn', 'debug'],
    [true, 'silent', 'debug'],
    [true, 'trace', 'trace'],
  ];
  for (const [verbose, configured, level] of table)
    assert.equal(cliLogLevel(verbose, configured), level, `${verbose} ${configured}`);
});

test('no kubeconfig anywhere is a configuration error at once; ~/.kube/config is the default', () => {
  const home = mkdtempSync(join(tmpdir(), 'home-'));
  const path = join(home, 'config');
  const config = configSchema.parse({});
  assert.throws(
    () => withKubeconfig(config, path),
    (err: unknown) => err instanceof ConfigError && /^no kubeconfig: give --kubeconfig FILE/.test(err.issues[0] ?? ''),
  );
  writeFileSync(path, 'apiVersion: v1\n');
  assert.equal(withKubeconfig(config, path).kubeconfig, path);
  const given = configSchema.parse({ kubeconfig: '/etc/kube' });
  assert.equal(withKubeconfig(given, path), given);
  const inPod = configSchema.parse({ inCluster: { host: '10.0.0.1', port: '443' } });
  assert.equal(withKubeconfig(inPod, join(home, 'absent')), inPod);
});

test('--as and --as-group as an impersonation; groups alone are a usage error', () => {
  assert.equal(impersonation({}), undefined);
  assert.deepEqual(impersonation({ as: 'u', asGroup: ['g1', 'g2'] }), { user: 'u', groups: ['g1', 'g2'] });
  assert.throws(() => impersonation({ asGroup: ['g'] }), UsageError);
});

test('a refusal names the API identity, the verb and resource refused, and what the command needs', () => {
  const config = configSchema.parse({});
  const refusal = {
    status: 403 as const,
    request: { verb: 'update', resource: 'configmaps', namespace: 'jobs-storage', name: 'jobs-storage-phase' },
    message: 'configmaps "jobs-storage-phase" is forbidden: User "alice" cannot update resource "configmaps"',
  };
  const err = refusalError('phase set', { name: 'alice', groups: [], confirmed: true }, refusal, config);
  assert.equal(err.code, 'ERR_K8S_DENIED');
  assert.match(
    err.message,
    /^phase set stopped: user "alice" may not update configmaps jobs-storage-phase in namespace jobs-storage \(403 Forbidden: configmaps .* is forbidden/,
  );
  assert.match(err.message, /phase set needs get and update on ConfigMap jobs-storage\/jobs-storage-phase/);
  assert.ok(!err.message.includes('\n'));
  const unconfirmed = refusalError(
    'report',
    { name: 'kubeconfig user "x" (/k)', groups: [], confirmed: false },
    refusal,
    config,
  );
  assert.match(unconfirmed.message, /^report stopped: kubeconfig user "x" \(\/k\) may not update/);
});
