import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job } from '../jobs/index.js';
import { renderJobWorkloads, type KObject, type RuntimeSettings } from '../runtime/index.js';
import { jobFromLoadEntry, type LoadEntry } from './load-file.js';
import type { EntryNote } from './entry.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures');

/** Names of every fixture under test/fixtures/<dir>, without the extension. */
export function fixtureNames(dir: 'workloads' | 'migrate'): string[] {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** An entry loaded as jobs-api loads it, then rendered as jobs-api renders the job: the workload objects. */
export function loadAndRender(
  entry: LoadEntry,
  tool: string,
  settings: RuntimeSettings,
): { job: Job; objects: KObject[] } {
  const job = jobFromLoadEntry(entry, tool);
  const rendered = renderJobWorkloads(job, settings);
  if (!rendered.ok) throw new Error(`render failed at ${rendered.problem.path}: ${rendered.problem.message}`);
  return { job, objects: rendered.value };
}

/** The functional-view fields a note says the load will change. */
export function changedFields(notes: readonly EntryNote[]): Set<string> {
  const byKey: Record<string, string[]> = {
    schedule: ['schedule'],
    command: ['cmd'],
    mount: ['mount'],
    retry: ['retry'],
    image: ['image'],
    timeout: ['timeout'],
  };
  return new Set(notes.filter((n) => n.changes).flatMap((n) => byKey[n.field] ?? []));
}

function obj(v: unknown): KObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as KObject) : {};
}

/** The pod owner (`spec`, or a CronJob's `spec.jobTemplate.spec`) and the first container of a workload. */
export function podParts(workload: KObject): { owner: KObject; container: KObject; spec: KObject } {
  const spec = obj(workload['spec']);
  const owner = workload['kind'] === 'CronJob' ? obj(obj(spec['jobTemplate'])['spec']) : spec;
  const podSpec = obj(obj(owner['template'])['spec']);
  const containers = Array.isArray(podSpec['containers']) ? podSpec['containers'] : [];
  return { owner, container: obj(containers[0]), spec };
}
