import type { Config } from '../config/schema.js';
import type { PrebuiltImage, ResolveSettings } from '../jobs/index.js';
import { FollowedImageConfig } from './image-config-file.js';
import type { FollowOptions } from './image-config-file.js';

export { prebuiltImagesFromImageConfig, type ImageConfigResult } from './image-config.js';

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

/**
 * jobs-api's deployment settings from the configuration, with the built-in image table unless a file is given. The
 * file is followed: `prebuiltImages` is the table of its latest good version (a mounted ConfigMap changes under a
 * running sync). A file that cannot be read or parsed now is a configuration error.
 */
export function loadRuntimeSettings(config: Config, follow: FollowOptions = {}): RuntimeSettings {
  const file = config.runtime.imageConfigFile
    ? new FollowedImageConfig(config.runtime.imageConfigFile, follow)
    : undefined;
  return {
    ...DEFAULT_RUNTIME_SETTINGS,
    defaultCpuLimit: config.runtime.defaultCpuLimit,
    toolHomeBase: config.runtime.toolHomeBase,
    harborHost: config.runtime.harborHost,
    get prebuiltImages(): readonly PrebuiltImage[] {
      return file ? file.images() : DEFAULT_PREBUILT_IMAGES;
    },
    toolNamespacePrefix: config.toolNamespacePrefix,
  };
}
