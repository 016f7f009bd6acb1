import { parse as parseYaml } from 'yaml';
import { ok, problem } from '../errors.js';
import type { Result } from '../errors.js';
import type { PrebuiltImage } from '../jobs/index.js';

/** The prebuilt image table, or the problem with the image config (its path names the image at fault). */
export type ImageConfigResult = Result<PrebuiltImage[]>;

function splitContainer(container: string): {
  host: string;
  path: string;
  tag: string;
} {
  const slash = container.indexOf('/');
  const host = slash >= 0 ? container.slice(0, slash) : '';
  let path = slash >= 0 ? container.slice(slash + 1) : container;
  let tag = 'latest';
  const colon = path.indexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  return { host, path, tag };
}

function variantImage(variants: Record<string, unknown>, key: string): string | undefined {
  const v = variants[key];
  if (typeof v !== 'object' || v === null) return undefined;
  const image = (v as Record<string, unknown>)['image'];
  return typeof image === 'string' ? image : undefined;
}

/**
 * The prebuilt image table from the text of `images-v1.yaml`. Like jobs-api since 2026, an image renders as its
 * webservice variant when it has one, else its jobs-framework variant; images with neither are skipped.
 */
export function prebuiltImagesFromImageConfig(yamlText: string): ImageConfigResult {
  let data: unknown;
  try {
    data = parseYaml(yamlText);
  } catch (e) {
    return problem('', `not YAML: ${(e as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return problem('', 'must be a mapping of image name to image');
  }
  const images: PrebuiltImage[] = [];
  for (const [name, raw] of Object.entries(data as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) {
      return problem(name, 'must be a mapping');
    }
    const entry = raw as Record<string, unknown>;
    const variants =
      typeof entry['variants'] === 'object' && entry['variants'] !== null
        ? (entry['variants'] as Record<string, unknown>)
        : {};
    const web = variantImage(variants, 'webservice');
    const jobs = variantImage(variants, 'jobs-framework');
    const chosen = web ?? jobs;
    if (chosen === undefined) continue;
    const aliases = Array.isArray(entry['aliases'])
      ? entry['aliases'].filter((a): a is string => typeof a === 'string')
      : [];
    const { host, path, tag } = splitContainer(chosen);
    const others = [web, jobs, typeof entry['image'] === 'string' ? entry['image'] : undefined]
      .filter((c): c is string => c !== undefined)
      .map((c) => splitContainer(c).path)
      .filter((p) => p !== path);
    images.push({
      short_name: name,
      aliases,
      state: typeof entry['state'] === 'string' ? entry['state'] : 'unknown',
      host,
      path,
      tag,
      variant_paths: [...new Set(others)],
    });
  }
  return ok(images);
}
