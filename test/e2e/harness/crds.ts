import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';

export const JOBS_API_GROUP = 'jobs-api.toolforge.org';
export const JOBS_API_PLURALS = { scheduled: 'scheduled-jobs', continuous: 'continuous-jobs' } as const;

interface KubectlRunner {
  kubectlOk(identity: string, args: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<string>;
}

// Same shape as the jobs-api Helm chart's crds/ (domain doc §3.1): no validation, no status subresource.
function upstreamCrd(kind: string, plural: string, singular: string): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${JOBS_API_GROUP}` },
    spec: {
      group: JOBS_API_GROUP,
      scope: 'Namespaced',
      names: { kind, plural, singular, listKind: `${kind}List`, categories: ['toolforge-jobs'] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

export function upstreamJobsCrds(): object[] {
  return [
    upstreamCrd('ScheduledJob', JOBS_API_PLURALS.scheduled, 'scheduled-job'),
    upstreamCrd('ContinuousJob', JOBS_API_PLURALS.continuous, 'continuous-job'),
  ];
}

/**
 * Installs the job CRDs as admin: the YAML files in crdDir when there are any, else the upstream shape; then waits
 * until every CRD is Established. Returns the CRD names.
 */
export async function installJobsCrds(cp: KubectlRunner, crdDir: string): Promise<string[]> {
  let files: string[] = [];
  try {
    files = (await readdir(crdDir))
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(crdDir, f));
  } catch {
    files = [];
  }
  const objects: object[] = [];
  if (files.length > 0) {
    for (const file of files) {
      for (const doc of YAML.parseAllDocuments(await readFile(file, 'utf8'))) {
        const obj: unknown = doc.toJS();
        if (obj && typeof obj === 'object') objects.push(obj);
      }
    }
  } else {
    objects.push(...upstreamJobsCrds());
  }
  const names = objects
    .filter(
      (o): o is { kind: string; metadata: { name: string } } =>
        (o as { kind?: unknown }).kind === 'CustomResourceDefinition',
    )
    .map((o) => o.metadata.name);
  await cp.kubectlOk('admin', ['apply', '-f', '-'], {
    stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  });
  if (names.length > 0) {
    await cp.kubectlOk('admin', [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...names.map((n) => `crd/${n}`),
    ]);
  }
  return names;
}
