import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { ConfigError, errorMessage } from '../errors.js';
import { resolveJob } from '../jobs/index.js';
import type { StoredJob } from '../jobs/model.js';
import { classifyWorkload } from '../runtime/classify.js';
import { parseWorkload } from '../runtime/parse.js';
import { DEFAULT_RUNTIME_SETTINGS, prebuiltImagesFromImageConfig } from '../runtime/settings.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { toolOfNamespace } from '../jobs/tenancy.js';
import type { Tracked } from './inventory.js';

/** jobs-api's deployment settings from the configuration, with the built-in image table unless a file is given. */
export function runtimeSettings(config: Config): RuntimeSettings {
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
      throw new ConfigError([`runtime.imageConfigFile: ${parsed.error.path} ${parsed.error.message}`.trim()]);
    prebuiltImages = parsed.images;
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

const FOREIGN: Tracked<StoredJob> = Object.freeze({ what: 'foreign' });

interface Meta {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
  };
}

/**
 * What the sync keeps of a CronJob or Deployment: a parsed jobs-framework job, a foreign workload, or nothing
 * (webservice objects, other namespaces, one-off Jobs).
 */
export function trackWorkloadWith(settings: RuntimeSettings, namespacePrefix: string) {
  return (obj: unknown, resource: 'cronjobs' | 'deployments'): Tracked<StoredJob> | undefined => {
    const md = (obj as Meta).metadata ?? {};
    const tool = toolOfNamespace(md.namespace ?? '', namespacePrefix);
    if (!tool || !md.name) return undefined;
    const cls = classifyWorkload(obj);
    if (cls.kind === 'foreign') return FOREIGN;
    if (cls.kind !== 'job') return undefined;
    const parsed = parseWorkload(obj, settings);
    const kind = resource === 'cronjobs' ? 'CronJob' : 'Deployment';
    return {
      what: 'job',
      entry: {
        tool,
        type: cls.jobType,
        name: md.name,
        workload: {
          kind,
          namespace: md.namespace ?? '',
          name: md.name,
          resourceVersion: md.resourceVersion ?? '',
          createdAt: Date.parse(md.creationTimestamp ?? '') || 0,
          deleting: Boolean(md.deletionTimestamp),
        },
        parsed:
          parsed.ok && parsed.job.job_type !== 'one-off'
            ? { ok: true, job: parsed.job }
            : {
                ok: false,
                error: parsed.ok ? 'not a stored job type' : `${parsed.error.path}: ${parsed.error.message}`,
              },
      },
    };
  };
}

/** The sync's runtime-facing dependencies for a configuration. */
export function workloadTracker(config: Config): {
  trackWorkload: ReturnType<typeof trackWorkloadWith>;
  resolve: (job: StoredJob) => StoredJob;
} {
  const settings = runtimeSettings(config);
  return {
    trackWorkload: trackWorkloadWith(settings, config.toolNamespacePrefix),
    resolve: (job) => resolveJob(job, settings),
  };
}
