import { imageTypeOf, resolveImageReference, type ImageSettings } from './images.js';
import type { Job, JobImage } from './model.js';
import { formatCpu, formatMemory } from './quantity.js';
import { resolveFilelogPath } from './paths.js';

export interface ResolveSettings extends ImageSettings {
  /** Tool homes live at `<toolHomeBase>/<tool>` (jobs-api hardcodes /data/project). */
  toolHomeBase: string;
}

export function toolHome(toolName: string, settings: Pick<ResolveSettings, 'toolHomeBase'>): string {
  return `${settings.toolHomeBase.replace(/\/+$/, '')}/${toolName}`;
}

/** Fills host, path, tag and type of an image stored by short name only; a complete image is kept as it is. */
export function resolveImage(image: JobImage, settings: ImageSettings): JobImage {
  if (image.type && image.host !== undefined && image.path !== undefined) return { ...image };
  const { image: found } = resolveImageReference(image.short_name, settings);
  return {
    ...found,
    ...image,
    ...pickDefined(found, ['host', 'path', 'tag', 'type']),
  };
}

function pickDefined(image: JobImage, keys: readonly (keyof JobImage)[]): Partial<JobImage> {
  const out: Partial<JobImage> = {};
  for (const key of keys) {
    if (image[key] !== undefined) Object.assign(out, { [key]: image[key] });
  }
  return out;
}

/**
 * jobs-api `get_resolved_core_job`: image-dependent defaults for fields that were not set. A standard image gets
 * mount "all" and file logging on; a buildservice image gets mount "none". With file logging on, the log paths
 * become absolute under the tool home (default `<job>.out` / `<job>.err`). Memory and cpu are normalized, and an
 * image stored by short name is completed from the image table. Returns a new object.
 */
export function resolveJob<J extends Job>(job: J, settings: ResolveSettings): J {
  // A shallow copy (nested objects copied one level) rather than structuredClone: this runs for every job the sync
  // sees, and nothing below mutates deeper than the top level. Object.assign, not a spread: docs/adr/0004.
  const resolved: J = Object.assign({}, job);
  const nested = resolved as unknown as Record<string, unknown>;
  for (const key of ['schedule', 'health_check']) {
    const value = nested[key];
    if (value && typeof value === 'object') nested[key] = { ...value };
  }
  resolved.image = resolveImage(job.image, settings);
  // pydantic's field validators normalize these whenever a job is built
  if (job.memory !== undefined) resolved.memory = formatMemory(job.memory) ?? job.memory;
  if (job.cpu !== undefined) resolved.cpu = formatCpu(job.cpu) ?? job.cpu;
  const buildservice = imageTypeOf(resolved.image) === 'buildservice';
  if (job.mount === undefined) resolved.mount = buildservice ? 'none' : 'all';
  if (job.filelog === undefined && !buildservice) resolved.filelog = true;
  if (resolved.filelog) {
    const home = toolHome(job.tool_name, settings);
    resolved.filelog_stdout = resolveFilelogPath(job.filelog_stdout, home, `${job.job_name}.out`);
    resolved.filelog_stderr = resolveFilelogPath(job.filelog_stderr, home, `${job.job_name}.err`);
  }
  return resolved;
}
