import { loadConfig } from '../../config/load.js';
import { formatProblem } from '../../errors.js';
import { readWorkload } from '../../runtime/read.js';
import { loadRuntimeSettings as runtimeSettings } from '../../runtime/settings.js';
import type { RuntimeSettings } from '../../runtime/settings.js';
import { createStorageCodec } from '../../storage/codec.js';
import type { JobCr, StorageCodec } from '../../storage/codec.js';
import { backfillCr } from '../../sync/entries.js';
import type { CliIo } from '../io.js';
import { EXIT } from '../io.js';
import { readObjects } from '../input.js';
import { toSafeYaml } from '../../k8s/yaml.js';

export interface ConvertEntry {
  source: { kind: string; namespace: string; name: string };
  outcome: 'job' | 'unmanaged' | 'error';
  cr?: JobCr;
  reason?: string;
  warnings?: string[];
}

interface Meta {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown };
}

function sourceOf(value: unknown): ConvertEntry['source'] {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Meta;
  const str = (x: unknown) => (typeof x === 'string' ? x : '');
  return { kind: str(v.kind), namespace: str(v.metadata?.namespace), name: str(v.metadata?.name) };
}

/**
 * What the backfill would do with one object: the CR it would write, or why none. Pure. The CR comes from the
 * sync's own builder (`backfillCr`), so it is the CR the sync writes for the same workload, less the annotations
 * naming the replica and the time of the write.
 */
export function convertObject(
  value: unknown,
  settings: RuntimeSettings,
  codec: StorageCodec,
  namespacePrefix = 'tool-',
): ConvertEntry {
  const source = sourceOf(value);
  if (!source.kind) return { source, outcome: 'error', reason: 'kind: not a Kubernetes object (no kind)' };
  const { class: cls, parsed } = readWorkload(value, settings);
  if (cls.kind !== 'job' || !parsed) return { source, outcome: 'unmanaged', reason: `${cls.kind}: ${cls.reason}` };
  if (!parsed.ok) return { source, outcome: 'error', reason: formatProblem(parsed.problem) };
  const { job } = parsed.value;
  if (job.job_type === 'one-off')
    return { source, outcome: 'unmanaged', reason: 'one-off-job: jobs-api does not store one-off jobs' };
  const rv = (value as Meta).metadata?.resourceVersion;
  const provenance =
    typeof rv === 'string' && rv ? { source: { kind: source.kind, name: source.name, resourceVersion: rv } } : {};
  const cr = backfillCr(job, provenance, { codec, namespacePrefix });
  const warnings = parsed.value.warnings.map(formatProblem);
  return { source, outcome: 'job', cr, ...(warnings.length > 0 ? { warnings } : {}) };
}

function describe(e: ConvertEntry): string {
  const ns = e.source.namespace ? `${e.source.namespace}/` : '';
  return `${e.source.kind || 'object'} ${ns}${e.source.name || '?'}`;
}

/** `jobs-storage convert`: exit 0 when every object converted or was classified unmanaged, 1 when any was an error. */
export function runConvert(opts: { filename: string; output: 'yaml' | 'json'; config?: string }, io: CliIo): number {
  const config = loadConfig({ file: opts.config });
  const settings = runtimeSettings(config);
  const codec = createStorageCodec();
  const objects = readObjects(opts.filename, io.readStdin);
  const entries = objects.map((o) => {
    const entry = convertObject(o.value, settings, codec, config.toolNamespacePrefix);
    return entry.outcome === 'error' ? { ...entry, reason: `${o.location}: ${entry.reason ?? ''}` } : entry;
  });
  if (opts.output === 'json') {
    io.stdout(`${JSON.stringify(entries, null, 2)}\n`);
  } else {
    const docs = entries.map((e) => {
      const head = `# ${describe(e)}: ${e.outcome}${e.reason ? ` (${e.reason})` : ''}\n${(e.warnings ?? []).map((w) => `# warning: ${w}\n`).join('')}`;
      return e.cr ? `${head}${toSafeYaml(e.cr)}` : head;
    });
    io.stdout(docs.join('---\n'));
  }
  for (const e of entries) if (e.outcome === 'error') io.stderr(`error: ${describe(e)}: ${e.reason ?? ''}\n`);
  return entries.some((e) => e.outcome === 'error') ? EXIT.inputErrors : EXIT.ok;
}
