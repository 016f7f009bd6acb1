import type { EmailOption, Job, MountOption, PortProtocol } from './model.js';
import { formatCpu, formatMemory } from './quantity.js';

/** jobs-api's raw defaults (tjf/core/models.py). */
export const JOB_DEFAULT_MEMORY = '512Mi';
export const JOB_DEFAULT_CPU = '100m';

/** The model defaults, in the normalized form a job carries them. */
export const DEFAULT_MEMORY = '0.5Gi';
export const DEFAULT_CPU = '0.1';
export const DEFAULT_EMAILS: EmailOption = 'none';
/** The model default; resolving a job replaces it by image type (standard → all, buildservice → none). */
export const DEFAULT_MOUNT: MountOption = 'none';
export const DEFAULT_FILELOG = false;
export const DEFAULT_RETRY = 0;
export const DEFAULT_TIMEOUT = 0;
export const DEFAULT_REPLICAS = 1;
export const DEFAULT_PORT_PROTOCOL: PortProtocol = 'tcp';

/** `parse_and_format_mem`, e.g. "512Mi" → "0.5Gi", "1Gi" → "1.0Gi"; null when not a quantity. */
export function normalizeMemory(memory: string): string | null {
  return formatMemory(memory);
}

/** `format_quantity(parse_quantity(cpu))`, e.g. "100m" → "0.1", "1" → "1.0"; null when not a quantity. */
export function normalizeCpu(cpu: string): string | null {
  return formatCpu(cpu);
}

/**
 * Every field at its effective value (the model defaults filled in), for comparing two jobs semantically.
 * Does not resolve image-dependent defaults: call `resolveJob` first for that.
 */
export function withDefaults(job: Job): Job {
  const common = {
    filelog: DEFAULT_FILELOG,
    filelog_stdout: null,
    filelog_stderr: null,
    emails: DEFAULT_EMAILS,
    mount: DEFAULT_MOUNT,
    memory: DEFAULT_MEMORY,
    cpu: DEFAULT_CPU,
  };
  switch (job.job_type) {
    case 'one-off':
      return { ...common, retry: DEFAULT_RETRY, ...job };
    case 'scheduled':
      return {
        ...common,
        retry: DEFAULT_RETRY,
        timeout: DEFAULT_TIMEOUT,
        ...job,
      };
    case 'continuous':
      return {
        ...common,
        port: null,
        port_protocol: DEFAULT_PORT_PROTOCOL,
        replicas: DEFAULT_REPLICAS,
        health_check: null,
        ...job,
      };
  }
}
