import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/schema.js';
import { ConfigError, errorMessage, ok, problem } from '../errors.js';
import type { Result } from '../errors.js';
import type { PrebuiltImage, ResolveSettings } from '../jobs/index.js';

/**
 * What parsing and rendering a workload depends on besides the object: jobs-api's deployment settings.
 * A wrong value is not harmless: e.g. a wrong `defaultCpuLimit` makes every default-cpu job parse as an explicit
 * cpu, and a CR backfilled from that would change the job's resources when jobs-api renders it again.
 */
export interface RuntimeSettings extends ResolveSettings {
  /** jobs-api `default_cpu_limit`: the cpu limit it writes for a job at the default cpu (100m). */
  defaultCpuLimit: string;
  /** Tool homes: `<toolHomeBase>/<tool>`, the working directory of standard-image jobs and the log directory. */
  toolHomeBase: string;
  /** The Harbor registry of buildservice images. */
  harborHost: string;
  registryHosts: readonly string[];
  prebuiltImages: readonly PrebuiltImage[];
  /**
   * Tool namespaces are `<prefix><tool>`. A namespace without the prefix falls back to jobs-api's own reading
   * (everything after the first "-"), which agrees with the default `tool-`.
   */
  toolNamespacePrefix?: string;
}

const LEGACY_REGISTRY = 'docker-registry.tools.wmflabs.org';
const SVC_REGISTRY = 'docker-registry.svc.toolforge.org';
const HARBOR = 'tools-harbor.wmcloud.org';

interface PrebuiltOptions {
  host?: string;
  state?: string;
  aliases?: string[];
  /** The jobs-framework variant path when the image also has a webservice variant (rendered since 2026). */
  jobsPath?: string;
}

function prebuilt(shortName: string, path: string, options: PrebuiltOptions = {}): PrebuiltImage {
  return {
    short_name: shortName,
    aliases: options.aliases ?? [],
    state: options.state ?? 'stable',
    host: options.host ?? LEGACY_REGISTRY,
    path,
    tag: 'latest',
    variant_paths: options.jobsPath ? [options.jobsPath] : [],
  };
}

/** An image with `-sssd-base` (jobs) and `-sssd-web` (webservice) variants. */
function twoVariants(shortName: string, base: string, options: Omit<PrebuiltOptions, 'jobsPath'> = {}): PrebuiltImage {
  return prebuilt(shortName, `${base}-sssd-web`, {
    ...options,
    jobsPath: `${base}-sssd-base`,
  });
}

/**
 * A reconstruction of Toolforge's image-config (`images-v1.yaml` in ConfigMap `tf-public/image-config`) from
 * jobs-api's tests and Toolforge's public image list. The live ConfigMap is the authority: load it with
 * `prebuiltImagesFromImageConfig` and put the result in the settings.
 */
export const DEFAULT_PREBUILT_IMAGES: readonly PrebuiltImage[] = [
  prebuilt('bookworm', 'toolforge-bookworm-web-sssd', {
    aliases: ['toolforge-bookworm', 'toolforge-bookworm-sssd', 'toolforge-bookworm-web-sssd'],
    jobsPath: 'toolforge-bookworm-sssd',
  }),
  prebuilt('bullseye', 'toolforge-bullseye-sssd', {
    aliases: ['toolforge-bullseye'],
  }),
  twoVariants('golang1.11', 'toolforge-golang111', {
    state: 'deprecated',
    aliases: ['tf-golang111', 'toolforge-golang111-sssd-base', 'toolforge-golang111-sssd-web'],
  }),
  twoVariants('jdk17', 'toolforge-jdk17', {
    aliases: ['tf-jdk17', 'toolforge-jdk17-sssd-base', 'toolforge-jdk17-sssd-web'],
  }),
  prebuilt('mariadb', 'toolforge-mariadb-sssd-base', {
    aliases: ['tf-mariadb', 'toolforge-mariadb-sssd-base'],
  }),
  twoVariants('mono6.8', 'toolforge-mono68', {
    aliases: ['tf-mono68', 'toolforge-mono68-sssd-base', 'toolforge-mono68-sssd-web'],
  }),
  twoVariants('node12', 'toolforge-node12', {
    state: 'deprecated',
    aliases: [
      'tf-node12',
      'tf-node12-DEPRECATED',
      'toolforge-node12',
      'toolforge-node12-sssd-base',
      'toolforge-node12-sssd-web',
    ],
  }),
  twoVariants('node16', 'toolforge-node16', {
    state: 'deprecated',
    aliases: ['tf-node16', 'toolforge-node16', 'toolforge-node16-sssd-base', 'toolforge-node16-sssd-web'],
  }),
  twoVariants('node18', 'toolforge-node18', {
    aliases: ['toolforge-node18', 'toolforge-node18-sssd-base', 'toolforge-node18-sssd-web'],
  }),
  twoVariants('node20', 'toolforge-node20', {
    aliases: ['toolforge-node20', 'toolforge-node20-sssd-base', 'toolforge-node20-sssd-web'],
  }),
  twoVariants('perl5.32', 'toolforge-perl532', {
    state: 'deprecated',
    aliases: ['tf-perl532', 'toolforge-perl532-sssd-base', 'toolforge-perl532-sssd-web'],
  }),
  twoVariants('perl5.36', 'toolforge-perl536', {
    aliases: ['toolforge-perl536', 'toolforge-perl536-sssd-base', 'toolforge-perl536-sssd-web'],
  }),
  twoVariants('php7.3', 'toolforge-php73', {
    state: 'deprecated',
    aliases: [
      'tf-php73',
      'tf-php73-DEPRECATED',
      'toolforge-php73',
      'toolforge-php73-sssd-base',
      'toolforge-php73-sssd-web',
    ],
  }),
  twoVariants('php7.4', 'toolforge-php74', {
    state: 'deprecated',
    aliases: ['tf-php74', 'toolforge-php74', 'toolforge-php74-sssd-base', 'toolforge-php74-sssd-web'],
  }),
  twoVariants('php8.2', 'toolforge-php82', {
    aliases: ['toolforge-php82', 'toolforge-php82-sssd-base', 'toolforge-php82-sssd-web'],
  }),
  twoVariants('php8.4', 'toolforge-php84', {
    host: SVC_REGISTRY,
    aliases: ['toolforge-php84', 'toolforge-php84-sssd-base', 'toolforge-php84-sssd-web'],
  }),
  twoVariants('python3.7', 'toolforge-python37', {
    state: 'deprecated',
    aliases: ['tf-python37', 'toolforge-python37-sssd-base', 'toolforge-python37-sssd-web'],
  }),
  twoVariants('python3.9', 'toolforge-python39', {
    state: 'deprecated',
    aliases: ['tf-python39', 'toolforge-python39', 'toolforge-python39-sssd-base', 'toolforge-python39-sssd-web'],
  }),
  twoVariants('python3.11', 'toolforge-python311', {
    aliases: ['toolforge-python311', 'toolforge-python311-sssd-base', 'toolforge-python311-sssd-web'],
  }),
  twoVariants('python3.13', 'toolforge-python313', {
    aliases: ['toolforge-python313', 'toolforge-python313-sssd-base', 'toolforge-python313-sssd-web'],
  }),
  twoVariants('ruby2.7', 'toolforge-ruby27', {
    state: 'deprecated',
    aliases: ['tf-ruby27', 'toolforge-ruby27-sssd-base', 'toolforge-ruby27-sssd-web'],
  }),
  twoVariants('ruby3.1', 'toolforge-ruby31', {
    aliases: ['toolforge-ruby31', 'toolforge-ruby31-sssd-base', 'toolforge-ruby31-sssd-web'],
  }),
  twoVariants('tcl8.6', 'toolforge-tcl86', {
    aliases: ['tf-tcl86', 'toolforge-tcl86-sssd-base', 'toolforge-tcl86-sssd-web'],
  }),
];

/** Production values as deployed on Toolforge's tools and toolsbeta (jobs-api's code default cpu limit is 4000m). */
export const DEFAULT_RUNTIME_SETTINGS: RuntimeSettings = Object.freeze({
  defaultCpuLimit: '1000m',
  toolHomeBase: '/data/project',
  harborHost: HARBOR,
  registryHosts: Object.freeze([LEGACY_REGISTRY, SVC_REGISTRY, HARBOR]),
  prebuiltImages: DEFAULT_PREBUILT_IMAGES,
});

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

/** jobs-api's deployment settings from the configuration, with the built-in image table unless a file is given. */
export function loadRuntimeSettings(config: Config): RuntimeSettings {
  let prebuiltImages = DEFAULT_RUNTIME_SETTINGS.prebuiltImages;
  if (config.runtime.imageConfigFile) {
    let text: string;
    try {
      text = readFileSync(config.runtime.imageConfigFile, 'utf8');
    } catch (err) {
      throw new ConfigError([
        `runtime.imageConfigFile: cannot read ${config.runtime.imageConfigFile}: ${errorMessage(err)}`,
      ]);
    }
    const parsed = prebuiltImagesFromImageConfig(text);
    if (!parsed.ok)
      throw new ConfigError([`runtime.imageConfigFile: ${parsed.problem.path} ${parsed.problem.message}`.trim()]);
    prebuiltImages = parsed.value;
  }
  return {
    ...DEFAULT_RUNTIME_SETTINGS,
    defaultCpuLimit: config.runtime.defaultCpuLimit,
    toolHomeBase: config.runtime.toolHomeBase,
    harborHost: config.runtime.harborHost,
    prebuiltImages,
    toolNamespacePrefix: config.toolNamespacePrefix,
  };
}
