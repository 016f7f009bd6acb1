import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { KubeApi, KubeApiError } from '../../src/k8s/api.js';
import { startStandInApi } from './stand-in-api.js';
import type { StandInApi } from './stand-in-api.js';

/**
 * `KubeApi.request` against a local HTTPS server standing in for the API server: a body sent as JSON text, and an
 * answer read and dropped (`answer: 'discard'`), whose errors still carry the API's Status.
 */

interface Received {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string;
}

describe('KubeApi.request: a body given as JSON text, an answer dropped unparsed', () => {
  let standIn: StandInApi;
  let api: KubeApi;
  const received: Received[] = [];
  /** TLS connections the stand-in accepted. */
  let connections = 0;
  /** The created object the stand-in echoes (larger than a socket's first chunk, so dropping reads several). */
  const echoed = JSON.stringify({ kind: 'ScheduledJob', metadata: { name: 'nightly' }, pad: 'x'.repeat(200_000) });

  before(async () => {
    standIn = await startStandInApi('kube-api', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        received.push({
          method: req.method ?? '',
          path,
          contentType: req.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (path.endsWith('/exists')) {
          const status = { kind: 'Status', code: 409, reason: 'AlreadyExists', message: 'nightly already exists' };
          res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify(status));
        } else if (path.endsWith('/not-json')) {
          res.writeHead(201, { 'content-type': 'text/plain' }).end('created, and this is not JSON');
        } else res.writeHead(201, { 'content-type': 'application/json' }).end(echoed);
      });
    });
    standIn.server.on('secureConnection', () => (connections += 1));
    api = new KubeApi({
      server: standIn.address,
      resolve: () => Promise.resolve({ ca: standIn.ca, headers: {} }),
    });
  });

  after(() => standIn.close());

  test('a body given as JSON text is sent as it is, as JSON', async () => {
    const text = '{"kind":"ScheduledJob","spec":{"cmd":"./run.sh \\u00e9","emails":"none"}}';
    const answer = await api.request<{ metadata: { name: string } }>('POST', '/created', { json: text });
    assert.equal(answer.metadata.name, 'nightly');
    const last = received.at(-1);
    assert.equal(last?.body, text);
    assert.equal(last?.contentType, 'application/json');
  });

  test("with answer 'discard' a success resolves to undefined, whatever its body, and the connection is reused", async () => {
    const before = connections;
    for (let i = 0; i < 20; i++) {
      assert.equal(await api.request('POST', '/created', { json: '{}', answer: 'discard' }), undefined);
    }
    // One after the other, each answer read to its end: the same kept-alive connection serves them all.
    assert.ok(connections - before <= 1, `${connections - before} connections for 20 requests`);
    assert.equal(await api.request('POST', '/not-json', { json: '{}', answer: 'discard' }), undefined);
    // Drained to its end: the next request still gets its own whole answer.
    const answer = await api.request<{ pad: string }>('POST', '/created', { body: {} });
    assert.equal(answer.pad.length, 200_000);
  });

  test("with answer 'discard' an error is still the API's Status, with its reason", async () => {
    await assert.rejects(
      api.request('POST', '/exists', { json: '{}', answer: 'discard' }),
      (err: unknown) =>
        err instanceof KubeApiError &&
        err.code === 'ERR_K8S_API' &&
        err.status === 409 &&
        err.reason === 'AlreadyExists' &&
        err.message === 'nightly already exists',
    );
  });
});
