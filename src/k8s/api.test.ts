import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';
import { KubeApi, KubeApiError } from './api.js';

interface Item {
  metadata: { namespace: string; name: string; resourceVersion: string };
  spec: { text: string };
}

/** `n` objects whose text holds multi-byte characters, so that chunk edges fall inside them. */
function items(from: number, n: number): Item[] {
  return Array.from({ length: n }, (_, i) => ({
    metadata: { namespace: `tool-t${from + i}`, name: `job-${from + i}`, resourceVersion: String(100 + from + i) },
    spec: { text: `ünïcødé ${'x'.repeat((from + i) % 300)} – "quoted" \\ ${from + i}` },
  }));
}

/** A list page's body; the continue token comes before the items, as the API server writes it. */
function pageBody(page: Item[], continueToken: string | undefined): string {
  const metadata = continueToken ? { resourceVersion: '999', continue: continueToken } : { resourceVersion: '999' };
  return JSON.stringify({ kind: 'CronJobList', apiVersion: 'batch/v1', metadata, items: page });
}

/** Writes `body` in pieces of `size` bytes, one event-loop turn apart (chunked transfer, no content-length). */
async function writeInPieces(res: ServerResponse, body: Buffer, size: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' });
  for (let at = 0; at < body.length; at += size) {
    res.write(body.subarray(at, at + size));
    await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}

describe('KubeApi reading bodies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-api-test-'));
  const pages = [items(0, 700), items(700, 500), items(1200, 3)];
  const requests: string[] = [];
  let server: https.Server;
  let api: KubeApi;

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    requests.push(url.search);
    if (url.pathname === '/single') {
      // One object, its length announced.
      const body = Buffer.from(JSON.stringify(items(5, 1)[0]));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    if (url.pathname === '/missing') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', message: 'cronjobs "x" not found', reason: 'NotFound' }));
      return;
    }
    const index = Number(url.searchParams.get('continue') ?? '0');
    const page = pages[index] ?? [];
    const next = index + 1 < pages.length ? String(index + 1) : undefined;
    // Pieces of odd sizes, smaller than a page, split multi-byte characters.
    await writeInPieces(res, Buffer.from(pageBody(page, next)), 997 + index * 4096);
  };

  before(async () => {
    const ca = await createCA(dir, 'ca', 'api-test-ca');
    const leaf = await createLeaf(dir, 'server', ca, {
      commonName: 'localhost',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    server = https.createServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, (req, res) => {
      void answer(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const caCert = readFileSync(ca.certFile);
    api = new KubeApi({
      server: `https://127.0.0.1:${port}`,
      resolve: () => Promise.resolve({ ca: caCert, headers: {} }),
    });
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a list arriving in many small chunks gives back every item of every page, in order', async () => {
    requests.length = 0;
    const seen: Item[] = [];
    const versions: string[] = [];
    for await (const page of api.listPages<Item>('/list', { limit: 700 }, 'lazy')) {
      for (const item of page.items) seen.push(item);
      versions.push(page.resourceVersion);
    }
    assert.deepEqual(
      seen,
      pages.flat().map((item) => ({ ...item, apiVersion: 'batch/v1', kind: 'CronJob' })),
    );
    assert.deepEqual(versions, ['999', '999', '999']);
    assert.deepEqual(
      requests.map((q) => new URLSearchParams(q).get('continue')),
      [null, '1', '2'],
    );
  });

  test('the same list read as arrays', async () => {
    let count = 0;
    for await (const page of api.listPages<Item>('/list', { limit: 700 })) count += page.items.length;
    assert.equal(count, 1203);
  });

  test('a body of announced length, and an error body, are read whole', async () => {
    assert.deepEqual(await api.request<Item>('GET', '/single'), items(5, 1)[0]);
    await assert.rejects(api.request('GET', '/missing'), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 404);
      assert.equal(err.reason, 'NotFound');
      assert.match(err.message, /not found/);
      return true;
    });
  });
});
