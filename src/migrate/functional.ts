import {
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  formatCpu,
  formatCron,
  formatMemory,
  resolveImageReference,
  resolveJob,
  type Job,
  type ResolveSettings,
} from '../jobs/index.js';

/** A job field that changes what runs, and its two values. */
export interface FunctionalDifference {
  field: string;
  before: unknown;
  after: unknown;
}

/**
 * What a job does, as flat comparable values: defaults filled in, quantities normalized, the schedule as the five
 * running fields (its text only seeds @-macros), log paths only when file logging is on.
 */
export function functionalView(job: Job, settings: ResolveSettings): Record<string, unknown> {
  const r = resolveJob(job, settings);
  const view: Record<string, unknown> = {
    job_type: r.job_type,
    job_name: r.job_name,
    cmd: r.cmd,
    // an alias and its image's own name are the same image
    image: `${resolveImageReference(r.image.short_name, settings).image.short_name}${r.image.digest ? `@${r.image.digest}` : ''}`,
    filelog: r.filelog === true,
    emails: r.emails ?? 'none',
    mount: r.mount,
    memory: formatMemory(r.memory ?? DEFAULT_MEMORY),
    cpu: formatCpu(r.cpu ?? DEFAULT_CPU),
  };
  if (r.filelog === true) {
    view['filelog_stdout'] = r.filelog_stdout;
    view['filelog_stderr'] = r.filelog_stderr;
  }
  return Object.assign(view, typeView(r));
}

function typeView(r: Job): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  switch (r.job_type) {
    case 'one-off':
      view['retry'] = r.retry ?? 0;
      break;
    case 'scheduled':
      view['retry'] = r.retry ?? 0;
      view['timeout'] = r.timeout ?? 0;
      view['schedule'] = formatCron(r.schedule);
      break;
    case 'continuous':
      view['port'] = r.port ?? null;
      if (r.port) view['port_protocol'] = r.port_protocol ?? 'tcp';
      view['replicas'] = r.replicas ?? 1;
      view['health_check'] = r.health_check ? JSON.stringify(r.health_check) : null;
  }
  return view;
}

/** The fields where two jobs run differently, in a stable order. */
export function functionalDiff(before: Job, after: Job, settings: ResolveSettings): FunctionalDifference[] {
  const a = functionalView(before, settings);
  const b = functionalView(after, settings);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((field) => ({ field, before: a[field], after: b[field] }));
}
