import type { StoredJob } from '../../src/jobs/model.js';
import { renderJobWorkloads } from '../../src/runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../src/runtime/settings.js';
import { createStorageCodec } from '../../src/storage/codec.js';
import type { JobCr } from '../../src/storage/codec.js';

/** A scheduled job as `toolforge jobs run NAME --command CMD --image python3.11 --schedule SCHEDULE` stores it. */
export function scheduledJob(
  tool: string,
  name: string,
  o: { cmd?: string; schedule?: [string, string, string, string, string, string] } = {},
): StoredJob {
  const [text, minute, hour, day, month, dow] = o.schedule ?? ['17 3 * * *', '17', '3', '*', '*', '*'];
  return {
    job_name: name,
    tool_name: tool,
    job_type: 'scheduled',
    cmd: o.cmd ?? `./${name}.sh`,
    image: { short_name: 'python3.11' },
    schedule: { text, minute, hour, day, month, day_of_week: dow },
  };
}

/** The objects jobs-api renders for a job (CronJob, or Deployment + Service). */
export function workloadsOf(job: StoredJob): Array<Record<string, unknown>> {
  const res = renderJobWorkloads(job, DEFAULT_RUNTIME_SETTINGS);
  if (!res.ok) throw new Error(`render failed: ${res.problem.path}: ${res.problem.message}`);
  return res.value;
}

export function crOf(job: StoredJob): JobCr {
  return createStorageCodec().encode(job);
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export { sleep } from './process.js';
