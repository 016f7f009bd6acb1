/**
 * The Toolforge job model, field for field as jobs-api's core model (tjf/core/models.py).
 *
 * Keys keep jobs-api's snake_case names on purpose: a stored CR's `spec` is this object with only the fields that
 * were set, so keeping one shape removes a mapping layer that could silently drop or rename a field.
 * An optional property that is absent means "not set" (pydantic's `exclude_unset`), which matters: jobs-api fills
 * image-dependent defaults (mount, filelog) only for fields that were not set.
 */

export const JOB_TYPES = ['one-off', 'scheduled', 'continuous'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const EMAIL_OPTIONS = ['none', 'all', 'onfinish', 'onfailure'] as const;
export type EmailOption = (typeof EMAIL_OPTIONS)[number];

export const MOUNT_OPTIONS = ['all', 'none'] as const;
export type MountOption = (typeof MOUNT_OPTIONS)[number];

export const PORT_PROTOCOLS = ['tcp', 'udp'] as const;
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];

export const IMAGE_TYPES = ['standard', 'buildservice'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

/**
 * jobs-api `Image`: only the keys that were set are present. A job created through the API stores just
 * `{ short_name }`; a job parsed from a workload carries the resolved host, path, tag and type.
 */
export interface JobImage {
  short_name: string;
  type?: ImageType;
  aliases?: string[];
  state?: string;
  digest?: string;
  host?: string;
  path?: string;
  tag?: string;
  exists?: boolean;
}

/** jobs-api `CronExpression`: the text the user gave plus the five resolved fields. */
export interface CronSchedule {
  text: string;
  minute: string;
  hour: string;
  day: string;
  month: string;
  day_of_week: string;
}

export type HealthCheck = { type: 'script'; script: string } | { type: 'http'; path: string };

interface CommonJob {
  job_name: string;
  tool_name: string;
  cmd: string;
  image: JobImage;
  filelog?: boolean;
  filelog_stdout?: string | null;
  filelog_stderr?: string | null;
  emails?: EmailOption;
  mount?: MountOption;
  /** Normalized as jobs-api does: e.g. "0.5Gi", "1Gi". */
  memory?: string;
  /** Normalized as jobs-api does: e.g. "0.1", "1". */
  cpu?: string;
}

export interface OneOffJob extends CommonJob {
  job_type: 'one-off';
  retry?: number;
}

export interface ScheduledJob extends CommonJob {
  job_type: 'scheduled';
  schedule: CronSchedule;
  retry?: number;
  timeout?: number;
}

export interface ContinuousJob extends CommonJob {
  job_type: 'continuous';
  port?: number | null;
  port_protocol?: PortProtocol;
  replicas?: number;
  health_check?: HealthCheck | null;
}

export type Job = OneOffJob | ScheduledJob | ContinuousJob;
/** Jobs that jobs-api keeps in storage (one-off jobs are not stored). */
export type StoredJob = ScheduledJob | ContinuousJob;
