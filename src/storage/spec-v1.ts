import { z } from 'zod';
import { EMAIL_OPTIONS, MOUNT_OPTIONS, PORT_PROTOCOLS } from '../jobs/model.js';

/**
 * The v1 spec schema: what jobs-api's models accept (tjf/core/models.py, `extra="forbid"`), so a spec that passes
 * here is one jobs-api can read. Only shape is checked; semantic rules live in src/jobs.
 */
const image = z
  .object({
    short_name: z.string().min(1),
    /** `buildpack` is the value before jobs-api renamed it to `buildservice`: read as `buildservice`. */
    type: z
      .enum(['standard', 'buildservice', 'buildpack'])
      .transform((t) => (t === 'buildpack' ? 'buildservice' : t))
      .optional(),
    aliases: z.array(z.string()).optional(),
    state: z.string().optional(),
    digest: z.string().optional(),
    host: z.string().optional(),
    path: z.string().optional(),
    tag: z.string().optional(),
    exists: z.boolean().optional(),
  })
  .loose();

const schedule = z
  .object({
    text: z.string().min(1),
    minute: z.string().min(1),
    hour: z.string().min(1),
    day: z.string().min(1),
    month: z.string().min(1),
    day_of_week: z.string().min(1),
  })
  .strict();

const healthCheck = z.discriminatedUnion('type', [
  z.object({ type: z.literal('script'), script: z.string().min(1) }).strict(),
  z.object({ type: z.literal('http'), path: z.string().min(1) }).strict(),
]);

const common = {
  job_name: z.string().min(1),
  tool_name: z.string().min(1),
  cmd: z.string(),
  image,
  filelog: z.boolean().optional(),
  filelog_stdout: z.string().nullable().optional(),
  filelog_stderr: z.string().nullable().optional(),
  emails: z.enum(EMAIL_OPTIONS).optional(),
  mount: z.enum(MOUNT_OPTIONS).optional(),
  memory: z.string().optional(),
  cpu: z.string().optional(),
  /** Written by jobs-api's own lazy backfill (a copy of the workload); accepted and not carried into the job. */
  k8s_object: z.record(z.string(), z.unknown()).optional(),
  status_short: z.string().nullable().optional(),
  status_long: z.string().nullable().optional(),
};

export const scheduledSpecV1 = z
  .object({
    ...common,
    job_type: z.literal('scheduled'),
    schedule,
    retry: z.number().int().min(0).max(5).optional(),
    timeout: z.number().int().min(0).optional(),
  })
  .strict();

export const continuousSpecV1 = z
  .object({
    ...common,
    job_type: z.literal('continuous'),
    port: z.number().int().min(1).max(65535).nullable().optional(),
    port_protocol: z.enum(PORT_PROTOCOLS).optional(),
    replicas: z.number().int().min(0).optional(),
    publish: z.string().optional(),
    health_check: healthCheck.nullable().optional(),
  })
  .strict();

export const specV1 = z.discriminatedUnion('job_type', [scheduledSpecV1, continuousSpecV1]);
export type SpecV1 = z.infer<typeof specV1>;
