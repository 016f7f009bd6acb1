import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';

interface KubectlRunner {
  kubectlOk(identity: string, args: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<string>;
}

/** Installs the job CRDs in `crdDir` (deploy/crds) as admin and waits until each is Established; returns their names. */
export async function installJobsCrds(cp: KubectlRunner, crdDir: string): Promise<string[]> {
  const files = (await readdir(crdDir))
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(crdDir, f));
  if (files.length === 0) throw new Error(`no CRD YAML in ${crdDir}`);
  const objects: object[] = [];
  for (const file of files) {
    for (const doc of YAML.parseAllDocuments(await readFile(file, 'utf8'))) {
      const obj: unknown = doc.toJS();
      if (obj && typeof obj === 'object') objects.push(obj);
    }
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
