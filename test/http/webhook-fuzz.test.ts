import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { configSchema } from '../../src/config/schema.js';
import { PHASES } from '../../src/phase/behaviour.js';
import type { Phase } from '../../src/phase/behaviour.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
import { createAdmissionHandler } from '../../src/webhook/admission.js';
import type { WebhookName } from '../../src/webhook/policy/types.js';
import { loadReview, reviewNames } from '../fixtures/admission/load.js';

/**
 * Property-based fuzzing of both admission endpoints: captured reviews with fields replaced by arbitrary JSON, and
 * arbitrary JSON bodies. Every body answers, and every review whose uid is readable answers 200 with an
 * AdmissionReview that echoes it (kube-apiserver then applies the failure policy the admin chose); only a body
 * without a readable uid gets an HTTP error, and never a 5xx.
 */

const WEBHOOKS: WebhookName[] = ['protect-storage', 'record-direct-writes'];
const RUNS = 3_000;

let phase: Phase = 'runtime-truth';
const metrics = createWebhookMetrics(new Registry());
const handler = createAdmissionHandler({
  config: configSchema.parse({}),
  logger: silentLogger(),
  metrics,
  phase: () => phase,
});

/** Dotted paths into a review where kube-apiserver puts data; the fuzzer replaces one or more of them. */
const PATHS = [
  'request.uid',
  'request.kind',
  'request.kind.kind',
  'request.kind.group',
  'request.resource',
  'request.resource.resource',
  'request.resource.group',
  'request.subResource',
  'request.name',
  'request.namespace',
  'request.operation',
  'request.userInfo',
  'request.userInfo.username',
  'request.userInfo.groups',
  'request.object',
  'request.object.kind',
  'request.object.metadata',
  'request.object.metadata.name',
  'request.object.metadata.uid',
  'request.object.metadata.labels',
  'request.object.metadata.labels.app.kubernetes.io/managed-by',
  'request.object.metadata.ownerReferences',
  'request.object.metadata.managedFields',
  'request.object.status',
  'request.oldObject',
  'request.oldObject.metadata',
  'request.oldObject.metadata.labels',
  'request.oldObject.metadata.managedFields',
  'request.oldObject.metadata.ownerReferences',
  'request.options',
  'request.options.fieldManager',
  'request.dryRun',
  'apiVersion',
  'kind',
] as const;

/** Sets `path` in `obj`, creating objects on the way; label keys with dots are kept whole after `labels.`. */
function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const labelAt = path.indexOf('labels.');
  const parts =
    labelAt >= 0
      ? [...path.slice(0, labelAt + 'labels'.length).split('.'), path.slice(labelAt + 'labels.'.length)]
      : path.split('.');
  let cur: Record<string, unknown> = obj;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

const jsonValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'Job', 'CronJob', 'Deployment', 'Scale', 'tool-x'),
  fc.array(fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 2 })), { maxLength: 3 }),
);

const mutatedReview = fc.record({
  fixture: fc.constantFrom(...reviewNames()),
  edits: fc.array(fc.tuple(fc.constantFrom(...PATHS), jsonValue), { minLength: 1, maxLength: 4 }),
  webhook: fc.constantFrom(...WEBHOOKS),
  phase: fc.constantFrom(...PHASES),
});

function uidOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const request = (body as { request?: unknown }).request;
  if (typeof request !== 'object' || request === null) return undefined;
  const uid = (request as { uid?: unknown }).uid;
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}

function checkAnswer(webhook: WebhookName, sent: unknown, text: string): void {
  const answer = handler(webhook, text);
  assert.ok(answer.status < 500, `HTTP ${answer.status}: ${answer.body}`);
  const uid = uidOf(sent);
  if (uid === undefined) {
    assert.equal(answer.status, 400, answer.body);
    return;
  }
  assert.equal(answer.status, 200, answer.body);
  const review = JSON.parse(answer.body) as {
    apiVersion: string;
    kind: string;
    response: { uid: string; allowed: boolean; status?: { code: number } };
  };
  assert.equal(review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(review.kind, 'AdmissionReview');
  assert.equal(review.response.uid, uid);
  assert.equal(typeof review.response.allowed, 'boolean');
  const code = review.response.status?.code;
  // 500 would be a policy crashing on input the decoder let through; malformed input must be caught as 400.
  assert.notEqual(code, 500, answer.body);
  if (code === 400 || code === 500) {
    // An answer that could not be decided: protect-storage fails closed, record-direct-writes open.
    assert.equal(review.response.allowed, webhook === 'record-direct-writes');
  }
}

test(`${RUNS} mutated reviews per run: no 5xx, every readable uid answered with an AdmissionReview`, () => {
  fc.assert(
    fc.property(mutatedReview, ({ fixture, edits, webhook, phase: p }) => {
      phase = p;
      const body = loadReview(fixture) as unknown as Record<string, unknown>;
      for (const [path, value] of edits) setPath(body, path, value);
      checkAnswer(webhook, body, JSON.stringify(body));
    }),
    { numRuns: RUNS },
  );
});

test(`${RUNS} arbitrary JSON and text bodies: no 5xx, an AdmissionReview whenever the uid is readable`, () => {
  const body = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => ({ sent: v, text: JSON.stringify(v) })),
    fc
      .record({ apiVersion: jsonValue, kind: jsonValue, request: fc.dictionary(fc.string(), jsonValue) })
      .map((v) => ({ sent: v, text: JSON.stringify(v) })),
    fc.string().map((s) => ({ sent: undefined, text: s })),
  );
  fc.assert(
    fc.property(body, fc.constantFrom(...WEBHOOKS), ({ sent, text }, webhook) => {
      let parsed: unknown = sent;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      checkAnswer(webhook, parsed, text);
    }),
    { numRuns: RUNS },
  );
});
