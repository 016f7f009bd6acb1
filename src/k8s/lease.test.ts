import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../log/logger.js';
import { KubeApiError } from './api.js';
import type { KubeApi } from './api.js';
import { LeaderElector } from './lease.js';

interface Stored {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: Record<string, unknown>;
}

/** One Lease in memory with optimistic concurrency, and an injectable delay per request. */
function leaseStore(delay: () => number = () => 0) {
  let lease: Stored | undefined;
  let rv = 0;
  const wait = () => new Promise((r) => setTimeout(r, delay()));
  const api = {
    async request(method: string, _path: string, o: { body?: Stored } = {}) {
      await wait();
      if (method === 'GET') {
        if (!lease) throw new KubeApiError(404, 'not found');
        return structuredClone(lease);
      }
      if (method === 'POST') {
        if (lease) throw new KubeApiError(409, 'exists');
        lease = {
          ...structuredClone(o.body as Stored),
          metadata: { ...(o.body as Stored).metadata, resourceVersion: String(++rv) },
        };
        return lease;
      }
      const body = o.body as Stored;
      if (!lease || body.metadata.resourceVersion !== lease.metadata.resourceVersion)
        throw new KubeApiError(409, 'conflict');
      lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++rv) } };
      return lease;
    },
  };
  return { api: api as unknown as KubeApi, holder: () => lease?.spec['holderIdentity'] };
}

function elector(api: KubeApi, identity: string, events: string[]) {
  return new LeaderElector({
    api,
    namespace: 'ns',
    name: 'lease',
    identity,
    leaseDurationSeconds: 1,
    renewDeadlineSeconds: 0.6 as number,
    retryPeriodSeconds: 0.1 as number,
    logger: silentLogger(),
    onStartedLeading: () => events.push(`${identity}+`),
    onStoppedLeading: () => events.push(`${identity}-`),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LeaderElector', () => {
  test('one of two candidates leads; the other takes over when it stops', async () => {
    const { api, holder } = leaseStore();
    const events: string[] = [];
    const a = elector(api, 'a', events);
    const b = elector(api, 'b', events);
    a.start();
    await sleep(150);
    b.start();
    await sleep(500);
    assert.equal(a.isLeader, true);
    assert.equal(b.isLeader, false);
    assert.equal(holder(), 'a');
    await a.stop();
    await sleep(400);
    assert.equal(b.isLeader, true, 'a released the lease, b took it');
    assert.equal(holder(), 'b');
    await b.stop();
    assert.deepEqual(events, ['a+', 'a-', 'b+', 'b-']);
  });

  test('a killed leader is replaced only after its lease expires, and never while it could still act', async () => {
    const { api } = leaseStore();
    const events: string[] = [];
    const a = elector(api, 'a', events);
    const b = elector(api, 'b', events);
    a.start();
    await sleep(200);
    b.start();
    a.abandon();
    const killedAt = Date.now();
    for (let i = 0; i < 40 && !b.isLeader; i++) await sleep(50);
    assert.equal(b.isLeader, true);
    assert.ok(Date.now() - killedAt >= 800, 'waited about a lease duration');
    await b.stop();
  });

  test('a leader whose renewals are slow steps down at the renew deadline, before a follower can win', async () => {
    let slow = false;
    const { api } = leaseStore(() => (slow ? 2000 : 0));
    const events: string[] = [];
    const a = elector(api, 'a', events);
    a.start();
    await sleep(200);
    assert.equal(a.isLeader, true);
    slow = true;
    await sleep(1200);
    assert.equal(a.isLeader, false, 'stepped down: renewals time out');
    a.abandon();
  });
});
