import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { ENVIRONMENTS, helmTemplate } from '../../scripts/tools/binaries.js';

/** deploy/chart: what the sync's Events (src/events) need of the chart: its RBAC and its config keys. */

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface Rendered {
  kind: string;
  metadata: { name: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string }>;
  data?: Record<string, string>;
}

const render = (env: (typeof ENVIRONMENTS)[number]): Rendered[] =>
  parseAllDocuments(helmTemplate({ environment: env }))
    .map((d) => d.toJS() as Rendered | null)
    .filter((o): o is Rendered => o !== null && typeof o === 'object' && 'kind' in o);

/** The verbs the rules grant on a group's resource. */
const verbsOn = (rules: readonly Rule[], group: string, resource: string): string[] =>
  [
    ...new Set(
      rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs),
    ),
  ].sort();

describe('deploy/chart: the sync Events', { timeout: 300_000 }, () => {
  for (const env of ENVIRONMENTS) {
    test(`${env}: the sync ServiceAccount may get, create and patch events.k8s.io Events cluster-wide, nothing else on Events`, () => {
      const objs = render(env);
      const bindings = objs.filter(
        (o) =>
          o.kind === 'ClusterRoleBinding' &&
          o.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === 'jobs-storage-sync'),
      );
      const roles = bindings.map((b) =>
        objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === b.roleRef?.name),
      );
      const rules = roles.flatMap((r) => r?.rules ?? []);
      assert.deepEqual(verbsOn(rules, 'events.k8s.io', 'events'), ['create', 'get', 'patch']);
      assert.deepEqual(verbsOn(rules, '', 'events'), [], 'core Events are not used');
      const eventRules = rules.filter((r) => r.resources.includes('events'));
      assert.ok(
        eventRules.every((r) => r.resources.length === 1 && !r.verbs.includes('*') && !r.verbs.includes('delete')),
        'Events only, and never deleted',
      );
      // Roles (namespaced) never grant Events: the tools' namespaces are reached through the ClusterRole only.
      const otherRules = objs
        .filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole')
        .filter((o) => !roles.includes(o))
        .flatMap((o) => o.rules ?? []);
      assert.deepEqual(verbsOn(otherRules, 'events.k8s.io', 'events'), []);
    });

    test(`${env}: the config file carries sync.events, valid for the product`, () => {
      const cm = render(env).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'jobs-storage-config');
      const raw = parseYaml(cm?.data?.['config.yaml'] ?? '') as { sync?: { events?: unknown } };
      const config = configSchema.parse(raw);
      assert.deepEqual(Object.keys(raw.sync?.events ?? {}).sort(), Object.keys(config.sync.events).sort());
      assert.equal(config.sync.events.enabled, true);
      assert.ok(config.sync.events.ratePerSecond > 0 && config.sync.events.burst >= 1);
      assert.match(config.sync.events.migrationUrl, /^https:\/\//);
    });
  }
});
