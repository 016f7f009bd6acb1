import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../config/schema.js';
import { KubeApiError } from '../k8s/api.js';
import type { KubeApi, ListPage } from '../k8s/api.js';
import { silentLogger } from '../log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../metrics/registry.js';
import { createStorageCodec } from '../storage/codec.js';
import { SyncSidecar } from './sidecar.js';
import { workloadTracker } from './track-workload.js';

test('stop() returns while the lists are still refused (SIGTERM before the first sync)', async () => {
  let lists = 0;
  const api = {
    // eslint-disable-next-line require-yield
    async *listPages(): AsyncGenerator<ListPage<unknown>> {
      lists += 1;
      throw new KubeApiError(403, 'cronjobs is forbidden');
    },
  } as unknown as KubeApi;
  const config = configSchema.parse({});
  const sidecar = new SyncSidecar({
    config,
    logger: silentLogger(),
    metrics: createSyncMetrics(new Registry()),
    api,
    codec: createStorageCodec(),
    phase: {
      current: () => 'runtime-truth',
      known: () => true,
      whenKnown: () => Promise.resolve(),
      onChange: () => () => undefined,
    },
    identity: 'test',
    elect: false,
    ...workloadTracker(config),
  });
  sidecar.start();
  while (lists === 0) await new Promise((r) => setTimeout(r, 5));
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    sidecar.stop().then(() => 'stopped'),
    new Promise((r) => (timer = setTimeout(() => r('still waiting'), 3000))),
  ]);
  clearTimeout(timer);
  assert.equal(stopped, 'stopped');
  assert.equal(sidecar.synced, false);
});
