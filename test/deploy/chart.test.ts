import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml, parseAllDocuments, parseDocument } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import {
  CHART_DIR,
  ENVIRONMENTS,
  VALUES_DIR,
  helmTemplate,
  helmTemplateArgs,
  runTool,
} from '../../scripts/tools/binaries.js';
import type { Environment } from '../../scripts/tools/binaries.js';

/** deploy/chart: helm lint, helm template for every environment, and what the rendered objects must hold. */

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

function objects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object' && 'kind' in o);
}

function find(objs: K8sObject[], kind: string, name: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} is rendered`);
  return o;
}

const tmp = mkdtempSync(join(tmpdir(), 'jobs-storage-chart-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The config file as the processes get it, checked by the product's own loader (no env, no flags). */
function loadRenderedConfig(objs: K8sObject[], name: string) {
  const cm = find(objs, 'ConfigMap', 'jobs-storage-config') as K8sObject & { data: Record<string, string> };
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, cm.data['config.yaml'] ?? '');
  return { config: loadConfig({ file, env: {} }), raw: parseYaml(cm.data['config.yaml'] ?? '') as unknown };
}

/** Every key path of a plain object tree (arrays are leaves). */
function keyPaths(tree: unknown, prefix = ''): string[] {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return [prefix];
  return Object.entries(tree).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe('deploy/chart', { timeout: 600_000 }, () => {
  test('helm lint passes with every environment', () => {
    for (const env of ENVIRONMENTS) {
      const res = runTool('helm', ['lint', '--strict', CHART_DIR, '--values', join(VALUES_DIR, `${env}.yaml`)]);
      assert.equal(res.code, 0, `helm lint ${env}: ${res.stdout}${res.stderr}`);
    }
  });

  const rendered = new Map<Environment, K8sObject[]>();
  const render = (env: Environment) => {
    const known = rendered.get(env);
    if (known) return known;
    const objs = objects(helmTemplate({ environment: env }));
    rendered.set(env, objs);
    return objs;
  };

  for (const env of ENVIRONMENTS) {
    test(`${env}: renders, and the config file is valid for the product and names every key of the schema`, () => {
      const objs = render(env);
      const { config, raw } = loadRenderedConfig(objs, env);
      // Every key of the schema with its default, plus webhook.clientCaFile where the chart mounts a client CA.
      const chartSet = env === 'local' ? [] : ['webhook.clientCaFile'];
      assert.deepEqual(keyPaths(raw).sort(), [...keyPaths(configSchema.parse({})), ...chartSet].sort());
      assert.equal(config.phase.namespace, 'jobs-storage');
      for (const name of ['jobs-storage-webhook', 'jobs-storage-sync']) {
        const dep = find(objs, 'Deployment', name) as K8sObject & {
          spec: {
            template: {
              spec: {
                enableServiceLinks?: boolean;
                containers: { args: string[]; env?: unknown; image: string }[];
              };
            };
          };
        };
        // Service links would set JOBS_STORAGE_WEBHOOK_PORT/JOBS_STORAGE_SYNC_PORT to tcp://… and fail the config.
        assert.equal(dep.spec.template.spec.enableServiceLinks, false, `${name}: no Service environment variables`);
        const [container] = dep.spec.template.spec.containers;
        assert.ok(container);
        assert.deepEqual(container.args.slice(1), ['--config', '/etc/jobs-storage/config.yaml']);
        // No configuration through the environment; the sync's V8 flags only (a young generation capped at 8 MB).
        assert.deepEqual(
          container.env,
          name === 'jobs-storage-sync' ? [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=8' }] : undefined,
          `${name}: no setting through the environment`,
        );
        assert.doesNotMatch(container.image, /:latest$/);
      }
    });
  }

  test("the admin API is bound to the sync pod's loopback; the Service and the pod expose only the probe port", () => {
    for (const env of ENVIRONMENTS) {
      const objs = render(env);
      const { config } = loadRenderedConfig(objs, `${env}-admin`);
      assert.equal(config.admin.host, '127.0.0.1', env);
      assert.notEqual(config.admin.port, config.sync.port, env);
      const dep = find(objs, 'Deployment', 'jobs-storage-sync') as K8sObject & {
        spec: { template: { spec: { containers: { ports?: { containerPort: number }[] }[] } } };
      };
      const ports = dep.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
      assert.deepEqual(ports, [config.sync.port], env);
      const svc = find(objs, 'Service', 'jobs-storage-sync') as K8sObject & { spec: { ports: { port: number }[] } };
      assert.deepEqual(
        svc.spec.ports.map((p) => p.port),
        [config.sync.port],
        env,
      );
    }
  });

  test('tools and toolsbeta start at ignore-unmanaged, own no job CRD and need no prometheus-operator', () => {
    for (const env of ['tools', 'toolsbeta'] as const) {
      const objs = render(env);
      const phase = find(objs, 'ConfigMap', 'jobs-storage-phase') as K8sObject & { data: { phase: string } };
      assert.equal(phase.data.phase, 'ignore-unmanaged');
      assert.equal(loadRenderedConfig(objs, `${env}-phase`).config.phase.initial, 'ignore-unmanaged');
      assert.deepEqual(
        objs.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name),
        [],
      );
      assert.deepEqual(
        objs.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/')).map((o) => o.kind),
        [],
      );
    }
    const harbors = Object.fromEntries(
      (['tools', 'toolsbeta'] as const).map((e) => [
        e,
        loadRenderedConfig(render(e), `${e}-h`).config.runtime.harborHost,
      ]),
    );
    assert.deepEqual(harbors, { tools: 'tools-harbor.wmcloud.org', toolsbeta: 'toolsbeta-harbor.wmcloud.org' });
  });

  test('local installs the two job CRDs of deploy/crds (printer columns included), kept by helm', () => {
    const crds = render('local').filter((o) => o.kind === 'CustomResourceDefinition');
    assert.deepEqual(crds.map((o) => o.metadata.name).sort(), [
      'continuous-jobs.jobs-api.toolforge.org',
      'scheduled-jobs.jobs-api.toolforge.org',
    ]);
    for (const file of ['continuous-jobs.yaml', 'scheduled-jobs.yaml']) {
      const want = parseYaml(readFileSync(join(CHART_DIR, '..', 'crds', file), 'utf8')) as K8sObject;
      const got = structuredClone(crds.find((c) => c.metadata.name === want.metadata.name));
      assert.deepEqual(got?.metadata.annotations, { 'helm.sh/resource-policy': 'keep' });
      delete got?.metadata.annotations;
      assert.deepEqual(got, want);
    }
  });

  test('no environment renders a job CRD helm may delete (deleting one deletes every job of its kind)', () => {
    const renders: Array<[string, K8sObject[]]> = [
      ...ENVIRONMENTS.map((env): [string, K8sObject[]] => [env, render(env)]),
      ...ENVIRONMENTS.map((env): [string, K8sObject[]] => [
        `${env} with crds.install`,
        objects(helmTemplate({ environment: env, set: ['crds.install=true'] })),
      ]),
    ];
    for (const [name, objs] of renders) {
      for (const crd of objs.filter((o) => o.kind === 'CustomResourceDefinition')) {
        assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep', `${name}: ${crd.metadata.name}`);
      }
    }
    // The phase ConfigMap is never deleted or reset either: a hook (no release resource) with keep.
    for (const env of ENVIRONMENTS) {
      const phase = find(render(env), 'ConfigMap', 'jobs-storage-phase');
      assert.equal(phase.metadata.annotations?.['helm.sh/resource-policy'], 'keep', env);
    }
  });

  test('the phase ConfigMap is a pre-install hook kept on uninstall, so upgrades never reset the phase', () => {
    const phase = find(render('tools'), 'ConfigMap', 'jobs-storage-phase');
    assert.equal(phase.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade');
    assert.equal(phase.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    const without = objects(helmTemplate({ environment: 'tools', set: ['phase.create=false'] }));
    assert.equal(
      without.find((o) => o.metadata.name === 'jobs-storage-phase'),
      undefined,
    );
  });

  test('the webhook configuration and the policy are webhook-config/ with the chart Service and cert-manager CA', () => {
    const objs = render('tools');
    const dir = join(CHART_DIR, '..', '..', 'webhook-config');
    const [wantVwc] = objects(readFileSync(join(dir, 'validating-webhook-configuration.yaml'), 'utf8'));
    const vwc = find(objs, 'ValidatingWebhookConfiguration', 'jobs-storage');
    assert.equal(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'jobs-storage/jobs-storage-webhook');
    assert.deepEqual(vwc['webhooks'], wantVwc?.['webhooks']);
    const wantPolicy = objects(readFileSync(join(dir, 'storage-policy.yaml'), 'utf8'));
    for (const want of wantPolicy) {
      const got = find(objs, want.kind, want.metadata.name);
      assert.deepEqual(got['spec'], want['spec']);
    }
    const cert = find(objs, 'Certificate', 'jobs-storage-webhook') as K8sObject & { spec: { dnsNames: string[] } };
    assert.ok(cert.spec.dnsNames.includes('jobs-storage-webhook.jobs-storage.svc'));
  });

  test('a webhook outside the cluster is reached by url with a given CA bundle', () => {
    const objs = objects(
      helmTemplate({
        environment: 'local',
        set: ['certManager.enabled=false', 'webhook.caBundle=Q0E=', 'webhook.url=https://127.0.0.1:8443'],
      }),
    );
    const vwc = find(objs, 'ValidatingWebhookConfiguration', 'jobs-storage') as K8sObject & {
      webhooks: { clientConfig: Record<string, unknown> }[];
    };
    assert.deepEqual(
      vwc.webhooks.map((w) => w.clientConfig),
      [
        { url: 'https://127.0.0.1:8443/validate/protect-storage', caBundle: 'Q0E=' },
        { url: 'https://127.0.0.1:8443/validate/record-direct-writes', caBundle: 'Q0E=' },
      ],
    );
    assert.equal(vwc.metadata.annotations, undefined);
    assert.equal(objs.filter((o) => o.apiVersion.startsWith('cert-manager.io/')).length, 0);
  });

  test('identity lists that differ from the generated webhook-config/ are refused with a clear message', () => {
    for (const set of [
      'config.identities.storageWriters={system:serviceaccount:x:y}',
      'config.identities.breakGlassGroups={admins}',
      'config.identities.controllerUsernamePrefixes={system:serviceaccount:kube-system:}',
    ]) {
      const res = runTool('helm', [...helmTemplateArgs({ environment: 'tools' }), '--set', set]);
      assert.notEqual(res.code, 0, set);
      assert.match(res.stderr, /config\.identities differ from the lists webhook-config\/ was generated from/);
    }
  });

  test('bad values fail with a message, not a broken manifest', () => {
    const cases: Array<[string[], RegExp]> = [
      [['image.tag=latest'], /image\.tag must name a published version/],
      [['image.name='], /image\.name must name the image/],
      [['image.repository=tools-harbor.wmcloud.org/toolforge/jobs-storage'], /image\.repository is gone/],
      [
        ['imageConfig.configMap=image-config', 'config.runtime.imageConfigFile=/etc/images.yaml'],
        /imageConfig\.configMap and config\.runtime\.imageConfigFile are both set/,
      ],
      [['imageConfig.configMap=image-config', 'imageConfig.key='], /imageConfig\.key must name/],
      [['phase.initial=bogus'], /phase\.initial must be one of/],
      [['certManager.enabled=false'], /webhook\.caBundle is required/],
      [['config.sync.leaseNamespace=elsewhere'], /leaseNamespace \(elsewhere\) must be the release namespace/],
      [['webhook.clientCA.name='], /webhook\.clientCA\.name must name/],
      [['webhook.clientCA.source=file'], /webhook\.clientCA\.source must be secret or configMap/],
      [['webhook.networkPolicy.from={}'], /webhook\.networkPolicy\.from is gone/],
    ];
    for (const [set, message] of cases) {
      const res = runTool('helm', [...helmTemplateArgs({ environment: 'tools' }), ...set.flatMap((s) => ['--set', s])]);
      assert.notEqual(res.code, 0, set.join(' '));
      assert.match(res.stderr, message);
    }
  });

  type WebhookDeployment = K8sObject & {
    spec: {
      template: {
        spec: {
          volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
          containers: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[];
        };
      };
    };
  };
  /** The client CA as the webhook gets it: the config file's clientCaFile, the volume and where it is mounted. */
  let clientCaRenders = 0;
  const clientCaOf = (objs: K8sObject[]) => {
    clientCaRenders += 1;
    const { raw } = loadRenderedConfig(objs, `client-ca-${clientCaRenders}`);
    const dep = find(objs, 'Deployment', 'jobs-storage-webhook') as WebhookDeployment;
    return {
      clientCaFile: (raw as { webhook: Record<string, unknown> }).webhook['clientCaFile'],
      volume: dep.spec.template.spec.volumes.find((v) => v.name === 'client-ca'),
      mount: dep.spec.template.spec.containers[0]?.volumeMounts.find((m) => m.name === 'client-ca'),
    };
  };

  test('webhook.clientCA mounts the CA and sets webhook.clientCaFile in the config file', () => {
    const objs = objects(
      helmTemplate({
        environment: 'local',
        set: ['webhook.clientCA.enabled=true', 'webhook.clientCA.name=apiserver-ca'],
      }),
    );
    assert.deepEqual(clientCaOf(objs), {
      clientCaFile: '/etc/webhook/client-ca/ca.crt',
      volume: { name: 'client-ca', secret: { secretName: 'apiserver-ca' } },
      mount: { name: 'client-ca', mountPath: '/etc/webhook/client-ca', readOnly: true },
    });
  });

  test('toolsbeta and tools deploy with the caller check on (the CA from a ConfigMap an admin creates)', () => {
    for (const env of ['toolsbeta', 'tools'] as const) {
      const objs = render(env);
      assert.deepEqual(
        clientCaOf(objs),
        {
          clientCaFile: '/etc/webhook/client-ca/ca.crt',
          volume: { name: 'client-ca', configMap: { name: 'jobs-storage-webhook-client-ca' } },
          mount: { name: 'client-ca', mountPath: '/etc/webhook/client-ca', readOnly: true },
        },
        env,
      );
      // The product's own loader takes the file as rendered (clientCaFile is a key of its schema).
      assert.equal(loadRenderedConfig(objs, `${env}-ca`).config.webhook.clientCaFile, '/etc/webhook/client-ca/ca.crt');
    }
    // local: lima-kilo's apiserver presents no webhook client certificate.
    assert.equal(clientCaOf(render('local')).volume, undefined);
  });

  interface NetworkPolicyPeer {
    ipBlock?: { cidr: string };
    namespaceSelector?: unknown;
    podSelector?: unknown;
  }
  type NetworkPolicy = K8sObject & {
    spec: {
      podSelector: unknown;
      policyTypes: string[];
      ingress?: { ports?: { protocol: string; port: number }[]; from?: NetworkPolicyPeer[] }[];
    };
  };
  const networkPolicyOf = (objs: K8sObject[]) => find(objs, 'NetworkPolicy', 'jobs-storage-webhook') as NetworkPolicy;

  test('NetworkPolicy: every rule names its sources; local names the local apiserver', () => {
    const renders: Array<[string, K8sObject[]]> = [
      ...ENVIRONMENTS.map((env): [string, K8sObject[]] => [env, render(env)]),
      [
        'tools with sources',
        objects(
          helmTemplate({
            environment: 'tools',
            set: [
              'webhook.networkPolicy.apiserverCIDRs={172.16.0.0/21}',
              'webhook.networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=metricsinfra',
            ],
          }),
        ),
      ],
    ];
    for (const [name, objs] of renders) {
      const np = networkPolicyOf(objs);
      assert.deepEqual(np.spec.policyTypes, ['Ingress'], name);
      assert.ok(Array.isArray(np.spec.ingress), `${name}: ingress is a list (omitted would mean no ingress policy)`);
      for (const rule of np.spec.ingress ?? []) {
        // A rule without `from`, or with `from: []`, admits every source.
        assert.ok(rule.from && rule.from.length > 0, `${name}: a rule without sources: ${JSON.stringify(rule)}`);
        for (const peer of rule.from) assert.notDeepEqual(peer, {}, name);
        assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: 8443 }], name);
      }
    }
    assert.deepEqual(networkPolicyOf(render('local')).spec.ingress, [
      { ports: [{ protocol: 'TCP', port: 8443 }], from: [{ ipBlock: { cidr: '172.18.0.0/16' } }] },
    ]);
    assert.deepEqual(networkPolicyOf(renders[renders.length - 1]?.[1] ?? []).spec.ingress, [
      {
        ports: [{ protocol: 'TCP', port: 8443 }],
        from: [
          { ipBlock: { cidr: '172.16.0.0/21' } },
          { namespaceSelector: { matchLabels: { name: 'metricsinfra' } } },
        ],
      },
    ]);
  });

  test('NetworkPolicy: none named means none (toolsbeta and tools until an admin names them): it admits nobody', () => {
    for (const env of ['toolsbeta', 'tools'] as const) {
      const np = networkPolicyOf(render(env));
      assert.deepEqual(np.spec.podSelector, { matchLabels: { 'app.kubernetes.io/name': 'jobs-storage-webhook' } });
      assert.deepEqual(np.spec.policyTypes, ['Ingress'], env);
      assert.deepEqual(np.spec.ingress, [], env);
    }
    // Only Prometheus named: it alone is admitted.
    const onlyMetrics = networkPolicyOf(
      objects(
        helmTemplate({
          environment: 'tools',
          set: ['webhook.networkPolicy.metricsFrom[0].ipBlock.cidr=172.16.5.0/24'],
        }),
      ),
    );
    assert.deepEqual(onlyMetrics.spec.ingress, [
      { ports: [{ protocol: 'TCP', port: 8443 }], from: [{ ipBlock: { cidr: '172.16.5.0/24' } }] },
    ]);
  });

  test('requests come from measured RSS', () => {
    const objs = render('tools');
    const memory = (name: string) =>
      (
        find(objs, 'Deployment', name) as K8sObject & {
          spec: { template: { spec: { containers: { resources: { requests: { memory: string } } }[] } } };
        }
      ).spec.template.spec.containers[0]?.resources.requests.memory;
    // Webhook: up to 122 MB RSS under saturating load; sync: ~145 MB at 4,000 tools (README "Values").
    assert.equal(memory('jobs-storage-webhook'), '128Mi');
    assert.equal(memory('jobs-storage-sync'), '192Mi');
  });

  test('the optional PrometheusRule carries exactly deploy/prometheus/jobs-storage.yaml', () => {
    const objs = objects(
      helmTemplate({
        environment: 'tools',
        set: ['metrics.prometheusRule.enabled=true', 'metrics.serviceMonitor.enabled=true'],
      }),
    );
    const rule = find(objs, 'PrometheusRule', 'jobs-storage');
    const want = parseYaml(readFileSync(join(CHART_DIR, '..', 'prometheus', 'jobs-storage.yaml'), 'utf8')) as unknown;
    assert.deepEqual(rule['spec'], want);
    find(objs, 'ServiceMonitor', 'jobs-storage');
  });
  test("the image is image.name:image.tag, Toolforge's key names; toolsbeta pulls from its own Harbor", () => {
    const images = (env: Environment) =>
      ['jobs-storage-webhook', 'jobs-storage-sync'].map(
        (name) =>
          (
            find(render(env), 'Deployment', name) as K8sObject & {
              spec: { template: { spec: { containers: { image: string }[] } } };
            }
          ).spec.template.spec.containers[0]?.image,
      );
    assert.deepEqual(images('tools'), [
      'tools-harbor.wmcloud.org/toolforge/jobs-storage:OVERWRITTEN_BY_CI',
      'tools-harbor.wmcloud.org/toolforge/jobs-storage:OVERWRITTEN_BY_CI',
    ]);
    assert.deepEqual(images('toolsbeta'), [
      'toolsbeta-harbor.wmcloud.org/toolforge/jobs-storage:OVERWRITTEN_BY_CI',
      'toolsbeta-harbor.wmcloud.org/toolforge/jobs-storage:OVERWRITTEN_BY_CI',
    ]);
    const chartValues = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { image: object };
    assert.deepEqual(Object.keys(chartValues.image).sort(), ['name', 'pullPolicy', 'tag']);
    for (const env of ENVIRONMENTS) {
      const values = parseYaml(readFileSync(join(VALUES_DIR, `${env}.yaml`), 'utf8')) as { image?: object };
      assert.ok(!values.image || !('repository' in values.image), `${env}: no image.repository`);
    }
  });

  type SyncDeployment = K8sObject & {
    spec: {
      template: {
        metadata: { annotations: Record<string, string> };
        spec: {
          volumes: { name: string; configMap?: { name: string; items?: unknown } }[];
          containers: { volumeMounts: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[] }[];
        };
      };
    };
  };

  test('imageConfig.configMap mounts the live image table into the sync, whole, and points the config file at it', () => {
    const objs = objects(helmTemplate({ environment: 'tools', set: ['imageConfig.configMap=image-config'] }));
    const { config } = loadRenderedConfig(objs, 'image-config');
    assert.equal(config.runtime.imageConfigFile, '/etc/jobs-storage-image-config/images-v1.yaml');
    const dep = find(objs, 'Deployment', 'jobs-storage-sync') as SyncDeployment;
    assert.deepEqual(
      dep.spec.template.spec.volumes.find((v) => v.name === 'image-config'),
      {
        name: 'image-config',
        configMap: { name: 'image-config', items: [{ key: 'images-v1.yaml', path: 'images-v1.yaml' }] },
      },
    );
    // No subPath: kubelet updates a ConfigMap volume only when it is mounted whole.
    assert.deepEqual(
      dep.spec.template.spec.containers[0]?.volumeMounts.find((m) => m.name === 'image-config'),
      { name: 'image-config', mountPath: '/etc/jobs-storage-image-config', readOnly: true },
    );
    // The webhook does not read the image table.
    const webhook = find(objs, 'Deployment', 'jobs-storage-webhook') as SyncDeployment;
    assert.equal(
      webhook.spec.template.spec.volumes.find((v) => v.name === 'image-config'),
      undefined,
    );
    // Every environment ships it off (documented in its values file) and keeps the built-in table.
    for (const env of ENVIRONMENTS) {
      assert.equal(loadRenderedConfig(render(env), `${env}-images`).config.runtime.imageConfigFile, '', env);
      const text = readFileSync(join(VALUES_DIR, `${env}.yaml`), 'utf8');
      const doc = parseDocument(text);
      assert.ok(doc.has('imageConfig'), `${env}: imageConfig is in the values file`);
      assert.match(text, /^# .*image-config/m, `${env}: a comment says where the image table comes from`);
    }
  });

  describe("deploy/helmfile.yaml in toolforge-deploy's layout", () => {
    const HELMFILE = join(CHART_DIR, '..', 'helmfile.yaml');
    interface Helmfile {
      environments?: Record<string, { values: string[] }>;
      repositories?: { name: string; url: string; oci?: boolean }[];
      releases?: { name: string; namespace: string; chart: string; version: string; values: string[] }[];
    }
    // helmfile renders each part with Go templates; every template here sits inside a YAML string, so the file
    // parses as it stands.
    const parts = parseAllDocuments(readFileSync(HELMFILE, 'utf8')).map((d) => {
      assert.deepEqual(d.errors, []);
      return d.toJS() as Helmfile;
    });
    const helmfile: Helmfile = Object.assign({}, ...parts) as Helmfile;

    test('environments read values/<env>.yaml, so the pinned chartVersion and chartRepository reach the release', () => {
      assert.deepEqual(Object.keys(helmfile.environments ?? {}).sort(), [...ENVIRONMENTS].sort());
      for (const env of ENVIRONMENTS) {
        assert.deepEqual(helmfile.environments?.[env]?.values, ['values/{{ .Environment.Name }}.yaml'], env);
      }
      // The environments are declared in a part before the releases: helmfile renders a part with the values of
      // the parts before it.
      assert.ok(parts.findIndex((p) => p.environments) < parts.findIndex((p) => p.releases));
    });

    test("repositories: the two Harbors' OCI chart repositories", () => {
      assert.deepEqual(
        [...(helmfile.repositories ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
        [
          { name: 'tools', url: 'tools-harbor.wmcloud.org/toolforge', oci: true },
          { name: 'toolsbeta', url: 'toolsbeta-harbor.wmcloud.org/toolforge', oci: true },
        ],
      );
    });

    test("the release's chart and version come from the values; the local override installs ./chart", () => {
      const [release, ...others] = helmfile.releases ?? [];
      assert.deepEqual(others, []);
      assert.ok(release);
      assert.equal(release.name, 'jobs-storage');
      assert.equal(release.namespace, 'jobs-storage');
      assert.equal(
        release.chart,
        '{{ .Values | get "localChart" (printf "%s/jobs-storage" .Values.chartRepository) }}',
      );
      assert.equal(release.version, '{{ if not (.Values | get "localChart" "") }}{{ .Values.chartVersion }}{{ end }}');
      assert.deepEqual(release.values, ['values/{{ .Environment.Name }}.yaml']);
      // The OCI chart is published under the chart's own name; ./chart, relative to the helmfile, is this chart.
      assert.equal(
        (parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { name: string }).name,
        'jobs-storage',
      );
      assert.equal(join(HELMFILE, '..', 'chart'), CHART_DIR);
      assert.match(readFileSync(HELMFILE, 'utf8'), /--state-values-set localChart=\.\/chart/);
    });

    test('every environment pins chartVersion and names one of the repositories as chartRepository', () => {
      const repositories = new Set((helmfile.repositories ?? []).map((r) => r.name));
      for (const env of ENVIRONMENTS) {
        const file = join(VALUES_DIR, `${env}.yaml`);
        assert.ok(existsSync(file), file);
        const values = parseYaml(readFileSync(file, 'utf8')) as { chartVersion?: unknown; chartRepository?: unknown };
        assert.equal(typeof values.chartVersion, 'string', `${env}: chartVersion`);
        assert.notEqual(values.chartVersion, '', `${env}: chartVersion`);
        assert.ok(
          repositories.has(String(values.chartRepository)),
          `${env}: chartRepository ${String(values.chartRepository)}`,
        );
      }
      const repoOf = (env: Environment) =>
        (parseYaml(readFileSync(join(VALUES_DIR, `${env}.yaml`), 'utf8')) as { chartRepository: string })
          .chartRepository;
      // As toolforge-deploy: each cluster its own Harbor; local (lima-kilo) the toolsbeta one.
      assert.deepEqual(
        ENVIRONMENTS.map((e) => [e, repoOf(e)]),
        [
          ['local', 'toolsbeta'],
          ['toolsbeta', 'toolsbeta'],
          ['tools', 'tools'],
        ],
      );
    });
  });
});
