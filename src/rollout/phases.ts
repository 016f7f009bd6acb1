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
