// The chart's certManager path for real: cert-manager's controller and cainjector (scripts/cert-manager, built from
// its Go module, run as host processes by scripts/control-plane/cert-manager.ts) issue the chart's Certificate and
// inject its CA into the release's ValidatingWebhookConfiguration, two webhook pods on a node
// (test/e2e/node-fixture.ts) serve that certificate, and a renewal under a steady stream of a tool's writes drops no
// admission call: what counts is what kube-apiserver counted (apiserver_admission_webhook_*, scraped as admin before
// and after) and the stream's own errors. Needs root; JOBS_STORAGE_NODE_E2E=0 leaves it out, and says so.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  buildCertManager,
  installCertManagerCrds,
  startCertManager,
} from '../../scripts/control-plane/cert-manager.js';
import type { CertManager } from '../../scripts/control-plane/cert-manager.js';
import { waitFor } from '../../scripts/control-plane/jobs.js';
import { WEBHOOK_NAMES } from '../../src/webhook/manifests.js';
import { admissionCalls, scrapeAdmissionWebhooks } from './exposition.js';
import { WriteStream } from './write-stream.js';
import {
  CHART_ON_NODE_TIMEOUT_MS,
  NS,
  TOOL,
  TOOL_NS,
  WEBHOOK_LABEL,
  WEBHOOK_PORT,
  nodeE2eEnabled,
  note,
  noteLeftOut,
  startChartOnNode,
} from './node-fixture.js';
import type { ChartOnNode } from './node-fixture.js';

const MANAGED = 'is managed by the Toolforge jobs API';
const CERTIFICATE = 'jobs-storage-webhook';
const SECRET = 'jobs-storage-webhook-tls';
const SERVICE = 'jobs-storage-webhook';
const SERVICE_DNS = `${SERVICE}.${NS}.svc`;
const NAMES = Object.values(WEBHOOK_NAMES);
/** The stream's pace: one create every 150 ms. */
const EVERY_MS = 150;
/** The kubelet refreshes a mounted Secret on its pod's next sync (about a minute), then the webhook reloads it. */
const ROLLOVER_TIMEOUT_MS = 180_000;

let chart: ChartOnNode | undefined;
let certManager: CertManager | undefined;
let logDir: string | undefined;

function on(): ChartOnNode {
  assert.ok(chart, 'chart not installed');
  return chart;
}

interface CertificateJson {
  metadata: { generation: number };
  status?: {
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
    revision?: number;
    notAfter?: string;
  };
}

interface TlsSecret {
  caCrt: string;
  tlsCrt: X509Certificate;
}

async function certificate(): Promise<CertificateJson> {
  return JSON.parse(
    await on().cp.kubectlOk('admin', ['get', 'certificate', CERTIFICATE, '-n', NS, '-o', 'json']),
  ) as CertificateJson;
}

function isReady(cert: CertificateJson): boolean {
  return cert.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

async function tlsSecret(): Promise<TlsSecret> {
  const secret = JSON.parse(await on().cp.kubectlOk('admin', ['get', 'secret', SECRET, '-n', NS, '-o', 'json'])) as {
    data: Record<string, string>;
  };
  const decode = (key: string): string => {
    const value = secret.data[key];
    assert.ok(value, `${SECRET} has no ${key}`);
    return Buffer.from(value, 'base64').toString('utf8');
  };
  return { caCrt: decode('ca.crt'), tlsCrt: new X509Certificate(decode('tls.crt')) };
}

/** The caBundle of every webhook of the release's ValidatingWebhookConfiguration(s), decoded. */
async function injectedBundles(): Promise<string[]> {
  const list = JSON.parse(
    await on().cp.kubectlOk('admin', [
      'get',
      'validatingwebhookconfigurations',
      '-l',
      'app.kubernetes.io/part-of=jobs-storage',
      '-o',
      'json',
    ]),
  ) as { items: Array<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }> };
  const bundles = list.items.flatMap((i) => i.webhooks.map((w) => w.clientConfig.caBundle ?? ''));
  assert.ok(bundles.length > 0, 'no webhook configuration of the release');
  return bundles.map((b) => Buffer.from(b, 'base64').toString('utf8'));
}

/** The certificate a TLS server presents (no verification: the caller compares it). */
function servedCertificate(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, servername: SERVICE_DNS, rejectUnauthorized: false }, () => {
      const peer = socket.getPeerCertificate(false);
      socket.destroy();
      if (peer.raw === undefined) reject(new Error(`${host}:${port} presented no certificate`));
      else resolve(new X509Certificate(peer.raw));
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`TLS to ${host}:${port} timed out`)));
    socket.on('error', reject);
  });
}

async function webhookPodIps(): Promise<Array<{ pod: string; ip: string }>> {
  const pods = await on().pods(WEBHOOK_LABEL);
  return pods
    .filter((p) => p.metadata.deletionTimestamp === undefined && p.status.podIP !== undefined)
    .map((p) => ({ pod: p.metadata.name, ip: p.status.podIP ?? '' }));
}

/** Sets the Certificate's Issuing condition through the status subresource, as `cmctl renew` does. */
async function triggerRenewal(): Promise<void> {
  const cert = await certificate();
  const issuing = {
    type: 'Issuing',
    status: 'True',
    reason: 'ManuallyTriggered',
    message: 'Certificate re-issuance manually triggered',
    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    observedGeneration: cert.metadata.generation,
  };
  await on().cp.kubectlOk('admin', [
    'patch',
    'certificate',
    CERTIFICATE,
    '-n',
    NS,
    '--subresource=status',
    '--type=json',
    `-p=${JSON.stringify([{ op: 'add', path: '/status/conditions/-', value: issuing }])}`,
  ]);
}

if (!nodeE2eEnabled) {
  noteLeftOut('test/e2e/node-cert-manager');
} else {
  before(
    async () => {
      // The binary first (cached when its sources did not change): no control plane runs while it builds.
      const buildStarted = Date.now();
      const binary = await buildCertManager();
      note(`cert-manager binary ${binary} ready in ${Date.now() - buildStarted} ms`);
      const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-cert-manager-'));
      logDir = dir;
      try {
        chart = await startChartOnNode({
          certificate: 'cert-manager',
          webhookReplicas: 2,
          syncReplicas: 1,
          beforeInstall: async (cp) => {
            const crds = await installCertManagerCrds(cp, binary);
            note(`cert-manager CRDs installed: ${crds.join(' ')}`);
            const started = Date.now();
            certManager = await startCertManager(cp, { dir, binary });
            note(`cert-manager controller and cainjector ready in ${Date.now() - started} ms (logs in ${dir})`);
          },
        });
      } catch (err) {
        const tails = certManager?.logTails() ?? '(cert-manager not started)';
        await certManager?.stop();
        throw new Error(`${String(err)}\n${tails}`, { cause: err });
      }
    },
    { timeout: CHART_ON_NODE_TIMEOUT_MS },
  );

  after(async () => {
    await certManager?.stop();
    await chart?.stop();
    if (logDir !== undefined) rmSync(logDir, { recursive: true, force: true });
  });

  test('cert-manager issues the Certificate, the cainjector injects its CA and both pods serve it', async (t) => {
    const t0 = Date.now();
    const cert = await certificate();
    assert.ok(isReady(cert), JSON.stringify(cert.status));
    const secret = await tlsSecret();
    // The serving certificate is signed by the release's CA (the jobs-storage-webhook-ca Certificate), whose
    // certificate is the Secret's ca.crt, and names the Service.
    const ca = new X509Certificate(secret.caCrt);
    assert.ok(secret.tlsCrt.checkIssued(ca), `${secret.tlsCrt.issuer} not issued by ${ca.subject}`);
    assert.ok(secret.tlsCrt.verify(ca.publicKey), 'tls.crt signature does not verify with ca.crt');
    assert.ok(ca.ca, 'ca.crt is not a CA certificate');
    assert.match(secret.tlsCrt.subjectAltName ?? '', new RegExp(`DNS:${SERVICE_DNS.replaceAll('.', '\\.')}`));

    const bundles = await waitFor(
      'the CA injected into every webhook of the release',
      async () => {
        const b = await injectedBundles();
        return b.every((x) => x === secret.caCrt) ? b : undefined;
      },
      60_000,
      500,
    );
    t.diagnostic(
      `caBundle of ${bundles.length} webhook(s) = ca.crt of ${SECRET} (CA ${ca.subject.trim()}), +${Date.now() - t0} ms`,
    );

    for (const { pod, ip } of await webhookPodIps()) {
      const served = await servedCertificate(ip, WEBHOOK_PORT);
      assert.equal(served.fingerprint256, secret.tlsCrt.fingerprint256, `${pod} (${ip}) serves another certificate`);
    }
    const clusterIp = await on().cp.kubectlOk('admin', [
      'get',
      'service',
      SERVICE,
      '-n',
      NS,
      '-o',
      'jsonpath={.spec.clusterIP}',
    ]);
    const viaService = await servedCertificate(clusterIp, 443);
    assert.equal(viaService.fingerprint256, secret.tlsCrt.fingerprint256);
    t.diagnostic(`both pods and ${clusterIp}:443 serve serial ${secret.tlsCrt.serialNumber}, +${Date.now() - t0} ms`);

    // kube-apiserver trusted the injected CA: it called both webhooks through the Service and none of the calls
    // failed (with failurePolicy Ignore a call refused for its certificate fails open and lets the write through).
    const before = await scrapeAdmissionWebhooks(on().cp);
    const cr = {
      apiVersion: 'jobs-api.toolforge.org/v1',
      kind: 'ScheduledJob',
      metadata: { name: 'sneaky', namespace: TOOL_NS },
      spec: {},
    };
    const denied = await on().cp.kubectl(TOOL, ['create', '-f', '-'], { stdin: JSON.stringify(cr) });
    assert.notEqual(denied.code, 0, 'the CR write was allowed');
    assert.match(denied.stderr, new RegExp(MANAGED));
    const warned = await on().cp.kubectl(TOOL, [
      'create',
      'cronjob',
      'direct-1',
      '-n',
      TOOL_NS,
      '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
      '--schedule=17 3 * * *',
      '--',
      './run.sh',
    ]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /^Warning: /m, 'the record-direct-writes webhook did not answer the CronJob create');
    const calls = admissionCalls(before, await scrapeAdmissionWebhooks(on().cp), NAMES);
    t.diagnostic(
      `CR write: ${denied.stderr.trim().slice(0, 160)}; CronJob create: ${warned.stderr.trim().slice(0, 160)}; ` +
        `apiserver: ${calls.calls} webhook calls, ${calls.failed} failed, ${calls.failOpen} failed open, ` +
        `${calls.denied} denied, +${Date.now() - t0} ms`,
    );
    assert.ok(calls.calls >= 1, 'no webhook call counted');
    assert.equal(calls.failed, 0, 'failed admission calls');
    assert.equal(calls.failOpen, 0, 'fail-open admission calls');
  });

  test('a renewal reaches both pods with no failed admission call under a steady write stream', async (t) => {
    const old = await tlsSecret();
    const before = await scrapeAdmissionWebhooks(on().cp);
    const api = on().cp.kubeConfig(TOOL).makeApiClient(k8s.BatchV1Api);
    const stream = new WriteStream(api, TOOL_NS, 'renewal', EVERY_MS);
    const started = Date.now();
    let issuedMs = 0;
    let servedMs = 0;
    let renewed: TlsSecret;
    try {
      await sleep(2_000);
      await triggerRenewal();
      const triggered = Date.now();
      renewed = await waitFor(
        'a renewed certificate in the Secret',
        async () => {
          const s = await tlsSecret();
          return s.tlsCrt.serialNumber !== old.tlsCrt.serialNumber && isReady(await certificate()) ? s : undefined;
        },
        60_000,
        250,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${certManager?.logTails() ?? ''}`, { cause: err });
      });
      issuedMs = Date.now() - triggered;
      await waitFor(
        'both webhook pods serving the renewed certificate',
        async () => {
          const pods = await webhookPodIps();
          const served = await Promise.all(pods.map(({ ip }) => servedCertificate(ip, WEBHOOK_PORT)));
          return pods.length === 2 && served.every((c) => c.fingerprint256 === renewed.tlsCrt.fingerprint256);
        },
        ROLLOVER_TIMEOUT_MS,
        1_000,
      );
      servedMs = Date.now() - triggered;
      // A few more writes on connections to the reloaded pods.
      await sleep(3_000);
    } finally {
      await stream.stop();
    }
    const calls = admissionCalls(before, await scrapeAdmissionWebhooks(on().cp), NAMES);
    t.diagnostic(
      `renewal: serial ${old.tlsCrt.serialNumber} -> ${renewed.tlsCrt.serialNumber}; issued ${issuedMs} ms and ` +
        `served by both pods ${servedMs} ms after the trigger; stream of ${Date.now() - started} ms: ` +
        `${stream.created} creates, ${stream.errors.length} client errors; apiserver: ${calls.calls} webhook calls, ` +
        `${calls.failed} failed, ${calls.failOpen} failed open, ${calls.denied} denied`,
    );
    assert.notEqual(renewed.tlsCrt.serialNumber, old.tlsCrt.serialNumber);
    // The CA stayed: the injected caBundle is the one before the renewal, and still the Secret's ca.crt.
    assert.equal(renewed.caCrt, old.caCrt);
    const ca = new X509Certificate(renewed.caCrt);
    assert.ok(renewed.tlsCrt.checkIssued(ca) && renewed.tlsCrt.verify(ca.publicKey), 'renewed tls.crt not from the CA');
    assert.deepEqual(new Set(await injectedBundles()), new Set([renewed.caCrt]));
    assert.deepEqual(stream.errors, []);
    assert.ok(stream.created > 0);
    assert.ok(calls.calls >= stream.created, `${calls.calls} calls for ${stream.created} creates`);
    assert.equal(calls.failed, 0, 'failed admission calls');
    assert.equal(calls.failOpen, 0, 'fail-open admission calls');
  });
}
