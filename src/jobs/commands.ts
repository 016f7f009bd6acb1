import type { JobType } from './model.js';

/** `toolforge jobs run` flags per type of job. */
const RUN_FLAGS: Readonly<Record<JobType, string>> = {
  scheduled: ' --schedule ...',
  continuous: ' --continuous ...',
  'one-off': ' ...',
};

/**
 * The `toolforge jobs run` command that creates a job of `type` named `name`, its other flags left to the maintainer
 * (`toolforge jobs ...` when the type is not known).
 */
export function jobsRunCommand(type: JobType | undefined, name: string): string {
  return type === undefined ? 'toolforge jobs ...' : `toolforge jobs run ${name}${RUN_FLAGS[type]}`;
}
