import type { ImageType, JobImage } from './model.js';

/**
 * Image names as jobs-api resolves them (tjf/core/images.py `Image.from_short_name_or_url`), against a table of
 * prebuilt images taken from the image-config ConfigMap. Harbor is not queried: a harbor reference is taken to exist,
 * as jobs-api did for images read back from a container URL.
 */

export interface PrebuiltImage {
  /** The image-config key, e.g. "python3.11"; what a job stores as `image.short_name`. */
  short_name: string;
  aliases: readonly string[];
  state: string;
  host: string;
  /** The container path jobs-api renders today (the webservice variant where there is one). */
  path: string;
  tag: string;
  /** Other container paths of the same image (e.g. the old `-sssd-base` jobs variant) that still match it. */
  variant_paths: readonly string[];
}

export interface ImageSettings {
  prebuiltImages: readonly PrebuiltImage[];
  harborHost: string;
  /** Registries that serve the prebuilt images under the same paths; a reference on any of them matches. */
  registryHosts: readonly string[];
}

export interface ImageReference {
  host: string;
  project: string;
  name: string;
  path: string;
  tag: string;
  digest: string;
}

/** `_split_short_name_or_url_to_parts`: [host/][tool-x/]name[:tag][@digest]. */
export function splitImageReference(urlOrName: string): ImageReference {
  let rest = urlOrName;
  let host = '';
  let project = '';
  let digest = '';
  let tag = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  if (slash >= 0 && rest.slice(0, slash).includes('.')) {
    host = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  const projectSlash = rest.indexOf('/');
  if (projectSlash >= 0 && rest.startsWith('tool-')) {
    project = rest.slice(0, projectSlash);
    rest = rest.slice(projectSlash + 1);
  }
  let name = rest;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    name = rest.slice(0, colon);
    tag = rest.slice(colon + 1);
  }
  return {
    host,
    project,
    name,
    path: project ? `${project}/${name}` : name,
    tag,
    digest,
  };
}

export type ImageMatch = 'prebuilt' | 'harbor' | 'unknown';

export interface ResolvedImage {
  image: JobImage;
  match: ImageMatch;
  /** Set when the reference matched only through an equivalent registry host. */
  hostAlias?: string;
}

function sameRegistry(a: string, b: string, settings: ImageSettings): boolean {
  return a === b || (settings.registryHosts.includes(a) && settings.registryHosts.includes(b));
}

function prebuiltToImage(p: PrebuiltImage): JobImage {
  return {
    short_name: p.short_name,
    type: 'standard',
    aliases: [...p.aliases],
    host: p.host,
    path: p.path,
    tag: p.tag,
    state: p.state,
  };
}

function matchPrebuilt(ref: ImageReference, settings: ImageSettings): ResolvedImage | null {
  if (ref.project || ref.digest) return null;
  for (const p of settings.prebuiltImages) {
    if (ref.host && !sameRegistry(ref.host, p.host, settings)) continue;
    if (ref.tag && ref.tag !== p.tag) continue;
    const pathMatches = p.path === ref.path || p.variant_paths.includes(ref.path);
    if (pathMatches || p.short_name === ref.name || p.aliases.includes(ref.name)) {
      const resolved: ResolvedImage = {
        image: prebuiltToImage(p),
        match: 'prebuilt',
      };
      if (ref.host && ref.host !== p.host) resolved.hostAlias = ref.host;
      return resolved;
    }
  }
  return null;
}

function shortNameOf(ref: ImageReference): string {
  return `${ref.path}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** A prebuilt short name or alias, a prebuilt or harbor container URL, or a harbor `tool-x/name:tag` reference. */
export function resolveImageReference(urlOrName: string, settings: ImageSettings): ResolvedImage {
  const ref = splitImageReference(urlOrName);
  if (ref.project && (!ref.host || ref.host === settings.harborHost)) {
    const image: JobImage = {
      short_name: shortNameOf(ref),
      type: 'buildservice',
      host: settings.harborHost,
      path: ref.path,
      tag: ref.tag,
      state: 'stable',
    };
    if (ref.digest) image.digest = ref.digest;
    return { image, match: 'harbor' };
  }
  const prebuilt = matchPrebuilt(ref, settings);
  if (prebuilt) return prebuilt;
  const type: ImageType = ref.project ? 'buildservice' : 'standard';
  const image: JobImage = {
    short_name: shortNameOf(ref),
    type,
    host: ref.host,
    path: ref.path,
    tag: ref.tag,
    state: ref.project ? 'stable' : 'unknown',
    exists: false,
  };
  if (ref.digest) image.digest = ref.digest;
  return { image, match: 'unknown' };
}

/** `Image.to_full_url`: host/path:tag@digest, each part only when present. */
export function imageUrl(image: JobImage): string {
  let url = image.host ? `${image.host}/` : '';
  url += image.path ?? image.short_name;
  if (image.tag) url += `:${image.tag}`;
  if (image.digest) url += `@${image.digest}`;
  return url;
}

/** The image type, inferred from the name the way old jobs-api did when a stored image has none. */
export function imageTypeOf(image: JobImage): ImageType {
  if (image.type) return image.type;
  return image.short_name.includes('/') ? 'buildservice' : 'standard';
}
