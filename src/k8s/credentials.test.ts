import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { credentialsFromKubeconfigFile, loadCredentials } from './credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(name: string, user: Record<string, unknown>, current = 'ctx'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': current,
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA') } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      users: [{ name: 'u', user }],
    }),
  );
  return path;
}

test('client certificates are read from the kubeconfig', async () => {
  const creds = credentialsFromKubeconfigFile(
    kubeconfig('cert.yaml', { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') }),
  );
  assert.equal(creds?.server, 'https://127.0.0.1:6443');
  const c = await creds?.resolve();
  assert.equal(c?.ca?.toString(), 'CA');
  assert.equal(c?.cert?.toString(), 'CERT');
  assert.equal(c?.key?.toString(), 'KEY');
  assert.deepEqual(c?.headers, {});
});

test('a token file is re-read on every resolve and found relative to the kubeconfig', async () => {
  writeFileSync(join(dir, 'token'), 'first\n');
  const creds = credentialsFromKubeconfigFile(kubeconfig('token.yaml', { tokenFile: 'token' }));
  assert.deepEqual((await creds?.resolve())?.headers, { authorization: 'Bearer first' });
  writeFileSync(join(dir, 'token'), 'rotated\n');
  assert.deepEqual((await creds?.resolve())?.headers, { authorization: 'Bearer rotated' });
});

test('auth it does not know (exec plugins) falls back to client-node', () => {
  assert.equal(credentialsFromKubeconfigFile(kubeconfig('exec.yaml', { exec: { command: 'x' } })), undefined);
});

test('a current-context that does not exist is an error, not a silent fallback', () => {
  assert.throws(() => credentialsFromKubeconfigFile(kubeconfig('bad.yaml', { token: 't' }, 'elsewhere')), ConfigError);
});

test('an empty or non-mapping kubeconfig is a configuration error naming the file, not a crash', () => {
  const bad = mkdtempSync(join(tmpdir(), 'kubeconfig-bad-'));
  for (const [name, text] of [
    ['empty', ''],
    ['list', '- a\n- b\n'],
  ] as const) {
    const path = join(bad, name);
    writeFileSync(path, text);
    assert.throws(
      () => credentialsFromKubeconfigFile(path),
      (err: unknown) => err instanceof ConfigError && err.message.includes(path),
    );
  }
});

test('--context picks another context of the kubeconfig; one it does not have is a configuration error', async () => {
  const path = join(dir, 'two-contexts.yaml');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'one',
      clusters: [
        { name: 'c1', cluster: { server: 'https://127.0.0.1:6443' } },
        { name: 'c2', cluster: { server: 'https://127.0.0.2:6443' } },
      ],
      contexts: [
        { name: 'one', context: { cluster: 'c1', user: 'u1' } },
        { name: 'two', context: { cluster: 'c2', user: 'u2' } },
      ],
      users: [
        { name: 'u1', user: { token: 't1' } },
        { name: 'u2', user: { token: 't2' } },
      ],
    }),
  );
  assert.equal(credentialsFromKubeconfigFile(path)?.server, 'https://127.0.0.1:6443');
  const two = await loadCredentials({ kubeconfig: path, inCluster: { host: '', port: '' } }, { context: 'two' });
  assert.equal(two.server, 'https://127.0.0.2:6443');
  assert.deepEqual((await two.resolve()).headers, { authorization: 'Bearer t2' });
  assert.throws(
    () => credentialsFromKubeconfigFile(path, 'three'),
    (err: unknown) => err instanceof ConfigError && err.message.includes("context 'three' not found"),
  );
  await assert.rejects(
    loadCredentials({ kubeconfig: '', inCluster: { host: '', port: '' } }, { context: 'two' }),
    ConfigError,
  );
});
