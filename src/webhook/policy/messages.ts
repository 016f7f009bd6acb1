import { jobsRunCommand } from '../../jobs/commands.js';
import type { JobType } from '../../jobs/model.js';
import type { PhaseBehaviour } from '../../phase/behaviour.js';
import { WORKLOAD_KINDS } from '../../runtime/kinds.js';
import type { Operation } from '../review.js';

/**
 * Texts a kubectl user reads. The apiserver may truncate a warning above 256 characters, so every text stays within
 * that: a long name is replaced by `<name>` in the suggested command first, then everywhere.
 */
export const MAX_WARNING_LENGTH = 256;

const PLACEHOLDER = '<name>';

/** The type of job each kind stands for, by CR kind and by workload kind (runtime/kinds). */
const JOB_TYPE: Readonly<Record<string, JobType>> = {
  ScheduledJob: 'scheduled',
  ContinuousJob: 'continuous',
  OneOffJob: 'one-off',
  ...Object.fromEntries(WORKLOAD_KINDS.map((k) => [k.kind, k.jobType])),
};

const VERB: Readonly<Record<Operation, string>> = {
  CREATE: 'created',
  UPDATE: 'changed',
  DELETE: 'deleted',
  CONNECT: 'used',
};

/** The `toolforge jobs` command that does what the request tried to do. */
export function jobsCommand(kind: string, operation: Operation, name: string): string {
  const job = name || PLACEHOLDER;
  if (operation === 'DELETE') return `toolforge jobs delete ${job}`;
  if (operation === 'UPDATE') return 'toolforge jobs load <jobs.yaml>';
  return jobsRunCommand(JOB_TYPE[kind], job);
}

/** `render(subject, commandName)`, with the name dropped from the command, then from the subject, until it fits. */
function fit(kind: string, name: string, render: (subject: string, commandName: string) => string): string {
  const subject = `${kind} "${name || PLACEHOLDER}"`;
  const full = render(subject, name);
  if (full.length <= MAX_WARNING_LENGTH) return full;
  const shorter = render(subject, PLACEHOLDER);
  return shorter.length <= MAX_WARNING_LENGTH ? shorter : render(`${kind} "${PLACEHOLDER}"`, PLACEHOLDER);
}

export function storageDeniedMessage(kind: string, operation: Operation, name: string): string {
  return fit(
    kind,
    name,
    (subject, n) =>
      `${subject} is managed by the Toolforge jobs API and cannot be ${VERB[operation]} directly; ` +
      `use '${jobsCommand(kind, operation, n)}' instead`,
  );
}

export function breakGlassWarning(kind: string, name: string, group: string): string {
  return fit(
    kind,
    name,
    (subject) =>
      `${subject} is managed by the Toolforge jobs API; allowed as a break-glass write (group ${group}), which is logged and counted`,
  );
}

export function directWriteWarning(kind: string, operation: Operation, name: string, phase: PhaseBehaviour): string {
  const consequence =
    phase.listsRuntimeOnlyJobs || operation === 'DELETE'
      ? '; this is recorded'
      : ": 'toolforge jobs list' will not show it";
  return fit(
    kind,
    name,
    (subject, n) =>
      `${subject} was ${VERB[operation]} directly, not through the Toolforge jobs API${consequence}. ` +
      `Use '${jobsCommand(kind, operation, n)}' instead`,
  );
}

export function jobsFrameworkDeniedMessage(kind: string, operation: Operation, name: string): string {
  return fit(
    kind,
    name,
    (subject, n) =>
      `${subject} carries Toolforge jobs framework labels, so only the Toolforge jobs API may write it; ` +
      `use '${jobsCommand(kind, operation, n)}' instead`,
  );
}
