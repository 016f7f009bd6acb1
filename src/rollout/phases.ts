/**
 * The rollout phases by name, in rollout order (switching back is allowed). What each phase does is the phase table
 * in `phase/behaviour.ts`; this module names them only, so that the config schema and the metrics can list them
 * without reaching up to the phase ConfigMap's reader.
 */
export const PHASES = ['runtime-truth', 'storage-truth', 'ignore-unmanaged', 'enforce'] as const;
export type Phase = (typeof PHASES)[number];

export const DEFAULT_PHASE: Phase = 'runtime-truth';

export function isPhase(value: unknown): value is Phase {
  return typeof value === 'string' && (PHASES as readonly string[]).includes(value);
}

/**
 * What happens to a job created outside the jobs API when the migration deadline comes, as a tool maintainer reads it,
 * per phase in force; `{deadline}` stands for the date. The sync's Events on such workloads say it (sync/events/decide) and `migrate`'s message.
 */
export const AT_DEADLINE: Readonly<Record<Phase, string>> = {
  'runtime-truth':
    "From {deadline}, the jobs service reads job definitions only from its own records. A job that was not created through the jobs API is then no longer listed by 'toolforge jobs list' and cannot be restarted, changed or deleted with 'toolforge jobs'. It keeps running as it is until someone deletes it.",
  'storage-truth':
    "From {deadline}, the jobs service stops picking up jobs that were created outside the jobs API. Such a job is then no longer listed by 'toolforge jobs list' and cannot be restarted, changed or deleted with 'toolforge jobs'. It keeps running as it is until someone deletes it.",
  'ignore-unmanaged':
    "Jobs created outside the jobs API are already not listed by 'toolforge jobs list' and cannot be managed with 'toolforge jobs'. From {deadline}, creating or changing jobs-framework objects directly (with kubectl or scripts) is refused.",
  enforce:
    "Creating or changing jobs-framework objects directly is refused already. Hand-written objects still run, but 'toolforge jobs' does not know them: they get none of its fixes, logs or status.",
};

/** `AT_DEADLINE` of the phase with the date filled in; an unset date (`''`) reads "the migration deadline". */
export function atDeadline(phase: Phase, deadline: string): string {
  return AT_DEADLINE[phase].replace('{deadline}', deadline === '' ? 'the migration deadline' : deadline);
}
