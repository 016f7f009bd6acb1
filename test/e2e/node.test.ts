// A real node for the local control plane (scripts/control-plane/node.ts): kubelet + containerd + runc + the CNI
// bridge, kube-proxy in iptables mode, kube-scheduler. It needs root; scripts/node/build.sh (run by `npm test` before
// the files) installs the Debian packages and builds kubelet/kube-proxy/kube-scheduler once. When the node cannot
// start, the tests fail with the reason. JOBS_STORAGE_NODE_E2E=0 leaves it out, and says so.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { NODE_IP, POD_CIDR, startNode, waitForNodeReady } from '../../scripts/control-plane/node.js';
import type { Node } from '../../scripts/control-plane/node.js';

const enabled = process.env['JOBS_STORAGE_NODE_E2E'] !== '0';
const NS = 'node-e2e';

let cp: ControlPlane | undefined;
let node: Node | undefined;

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}
function theNode(): Node {
  assert.ok(node, 'node not started');
  return node;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `kubectl get` (jsonpath) as admin until accept() says yes; returns the last output. */
async function waitForJsonpath(
  args: string[],
  jsonpath: string,
  accept: (out: string) => boolean,
  timeoutMs = 120_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await plane().kubectl('admin', ['get', ...args, '-o', `jsonpath=${jsonpath}`]);
    last = res.code === 0 ? res.stdout : res.stderr;
    if (res.code === 0 && accept(res.stdout)) return res.stdout;
    await sleep(300);
  }
  const describe = await plane().kubectl('admin', ['describe', ...args]);
  throw new Error(`timed out waiting on ${args.join(' ')} (${last.trim()}):\n${describe.stdout}`);
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

if (!enabled) {
  process.stdout.write('# node e2e left out (JOBS_STORAGE_NODE_E2E=0): run it with npm test -- test/e2e/node (root)\n');
} else {
  before(async () => {
    const started = Date.now();
    cp = await startControlPlane({ node: { advertiseAddress: NODE_IP } });
    const nodeStart = Date.now();
    node = await startNode(cp);
    const readyMs = await waitForNodeReady(cp, node);
    process.stdout.write(
      `# node ${node.name} Ready ${Date.now() - nodeStart} ms after startNode() (${readyMs} ms after registration); ` +
        `control plane + node ${Date.now() - started} ms\n`,
    );
    await cp.kubectlOk('admin', ['create', 'namespace', NS]);
    // The ServiceAccount admission plugin refuses pods until the controller-manager has made the namespace's default.
    await waitForJsonpath(['serviceaccount', 'default', '-n', NS], '{.metadata.name}', (s) => s === 'default');
  });

  after(async () => {
    await node?.stop();
    await cp?.stop();
  });

  test('the node registers as Ready with the bridge address and the same Kubernetes version', async () => {
    const out = await plane().kubectlOk('admin', [
      'get',
      'node',
      theNode().name,
      '-o',
      'jsonpath={.status.addresses[?(@.type=="InternalIP")].address} {.status.nodeInfo.kubeletVersion} ' +
        '{.status.nodeInfo.kubeProxyVersion} {.status.nodeInfo.containerRuntimeVersion} ' +
        '{.status.conditions[?(@.type=="Ready")].status}',
    ]);
    const [ip, kubeletVersion, , runtime, ready] = out.split(' ');
    assert.equal(ip, NODE_IP);
    assert.equal(kubeletVersion, 'v1.34.4');
    assert.match(runtime ?? '', /^containerd:\/\//);
    assert.equal(ready, 'True');
  });

  test('a pod with the locally built pause image is scheduled and becomes Ready', async () => {
    const started = Date.now();
    await plane().apply('admin', [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'pause', namespace: NS },
        spec: {
          containers: [{ name: 'pause', image: theNode().images.pause, imagePullPolicy: 'Never' }],
          securityContext: { runAsNonRoot: true, runAsUser: 65534 },
          automountServiceAccountToken: false,
        },
      },
    ]);
    await waitForJsonpath(
      ['pod', 'pause', '-n', NS],
      '{.status.conditions[?(@.type=="Ready")].status}',
      (s) => s === 'True',
    );
    const podReadyMs = Date.now() - started;
    const out = await plane().kubectlOk('admin', [
      'get',
      'pod',
      'pause',
      '-n',
      NS,
      '-o',
      'jsonpath={.spec.nodeName} {.status.phase} {.status.podIP}',
    ]);
    const [nodeName, phase, podIp] = out.split(' ');
    assert.equal(nodeName, theNode().name);
    assert.equal(phase, 'Running');
    assert.ok(podIp?.startsWith(POD_CIDR.split('.').slice(0, 2).join('.') + '.'), `pod IP ${podIp ?? ''}`);
    process.stdout.write(`# pause pod Ready ${podReadyMs} ms after create\n`);
  });

  test('a Deployment behind a Service answers on its ClusterIP from the host, through the apiserver proxy, and its logs come from the kubelet', async () => {
    const started = Date.now();
    const labels = { app: 'web' };
    await plane().apply('admin', [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: NS },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              securityContext: { runAsNonRoot: true, runAsUser: 65534 },
              containers: [
                {
                  name: 'http',
                  image: theNode().images.http,
                  imagePullPolicy: 'Never',
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 },
                  securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: NS },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      },
    ]);
    await waitForJsonpath(['deployment', 'web', '-n', NS], '{.status.readyReplicas}', (s) => s === '1');
    const deploymentReadyMs = Date.now() - started;
    const clusterIp = await plane().kubectlOk('admin', [
      'get',
      'service',
      'web',
      '-n',
      NS,
      '-o',
      'jsonpath={.spec.clusterIP}',
    ]);
    assert.match(clusterIp, /^10\.0\.0\.\d+$/);
    const podName = (
      await plane().kubectlOk('admin', [
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        'app=web',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).trim();

    // The host reaches the ClusterIP as kube-apiserver reaches a webhook Service: kube-proxy's rules must be in place,
    // which may take one sync after the EndpointSlice appears.
    let viaClusterIp: { status: number; body: string } | undefined;
    let lastError = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        viaClusterIp = await httpGet(`http://${clusterIp}/through-cluster-ip`);
        break;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        await sleep(300);
      }
    }
    assert.ok(viaClusterIp, `ClusterIP ${clusterIp} never answered: ${lastError}`);
    assert.equal(viaClusterIp.status, 200);
    assert.equal(viaClusterIp.body, `jobs-storage e2e http from ${podName} path /through-cluster-ip\n`);
    const serviceReadyMs = Date.now() - started;

    const viaProxy = await plane().kubectlOk('admin', [
      'get',
      '--raw',
      `/api/v1/namespaces/${NS}/services/http:web:80/proxy/through-apiserver`,
    ]);
    assert.equal(viaProxy, `jobs-storage e2e http from ${podName} path /through-apiserver\n`);

    const logs = await plane().kubectlOk('admin', ['logs', '-n', NS, podName]);
    assert.match(logs, /listening on :8080/);
    process.stdout.write(
      `# web Deployment Ready ${deploymentReadyMs} ms after apply; ClusterIP ${clusterIp} answered at ${serviceReadyMs} ms\n`,
    );
  });

  test('a pod reaches the apiserver through the kubernetes Service with its ServiceAccount token', async () => {
    const clusterIp = await plane().kubectlOk('admin', [
      'get',
      'service',
      'web',
      '-n',
      NS,
      '-o',
      'jsonpath={.spec.clusterIP}',
    ]);
    // Host -> web's ClusterIP -> pod -> 10.0.0.1:443 (the `kubernetes` Service) -> kube-apiserver on the node address.
    const res = await httpGet(`http://${clusterIp}/apiserver`);
    assert.equal(res.status, 201, res.body);
    const review = JSON.parse(res.body) as { status?: { userInfo?: { username?: string; groups?: string[] } } };
    assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${NS}:default`);
    assert.ok(review.status?.userInfo?.groups?.includes(`system:serviceaccounts:${NS}`));
  });
}
