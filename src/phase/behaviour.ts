import { PHASES } from '../rollout/phases.js';
import type { Phase } from '../rollout/phases.js';

/**
 * What each rollout phase does. Every behaviour that depends on the phase is read from `phaseBehaviour`, so the
 * table below is the whole policy. The phase names live in `rollout/phases.ts` and are re-exported here.
 */
export { DEFAULT_PHASE, PHASES, isPhase, type Phase } from '../rollout/phases.js';

export interface PhaseBehaviour {
  /** Where jobs-api reads job definitions from. */
  sourceOfTruth: 'runtime' | 'storage';
  /** Sync: a jobs-framework job found in k8s without a CR gets one. */
  backfillRuntimeOnly: boolean;
  /** Webhook: deny direct writes of workloads that carry jobs-framework labels. */
  denyDirectJobsFrameworkWrites: boolean;
  /** Whether jobs-api lists a job that exists only in k8s. */
  listsRuntimeOnlyJobs: boolean;
}

const TABLE: Readonly<Record<Phase, PhaseBehaviour>> = {
  'runtime-truth': {
    sourceOfTruth: 'runtime',
    backfillRuntimeOnly: true,
    denyDirectJobsFrameworkWrites: false,
    listsRuntimeOnlyJobs: true,
  },
  'storage-truth': {
    sourceOfTruth: 'storage',
    backfillRuntimeOnly: true,
    denyDirectJobsFrameworkWrites: false,
    listsRuntimeOnlyJobs: true,
  },
  'ignore-unmanaged': {
    sourceOfTruth: 'storage',
    backfillRuntimeOnly: false,
    denyDirectJobsFrameworkWrites: false,
    listsRuntimeOnlyJobs: false,
  },
  enforce: {
    sourceOfTruth: 'storage',
    backfillRuntimeOnly: false,
    denyDirectJobsFrameworkWrites: true,
    listsRuntimeOnlyJobs: false,
  },
};

export function phaseBehaviour(phase: Phase): PhaseBehaviour {
  return TABLE[phase];
}

/**
 * Whether going from `from` to `to` starts denying tools' direct workload writes: the one switch an admin is asked
 * to confirm (`phase set`), since kubectl users then see refusals where they saw warnings.
 */
export function startsDenying(from: Phase, to: Phase): boolean {
  return TABLE[to].denyDirectJobsFrameworkWrites && !TABLE[from].denyDirectJobsFrameworkWrites;
}

/**
 * The phase to decide in while the phase in force is not known yet (the ConfigMap has not been read): `phase`
 * (the configured initial one) if it denies no workload write, else the latest phase before it that denies none.
 * Such a phase denies only what every phase denies (job CR writes that bypass jobs-api).
 */
export function phaseBeforeKnown(phase: Phase): Phase {
  for (let i = PHASES.indexOf(phase); i >= 0; i -= 1) {
    const candidate = PHASES[i] as Phase;
    if (!TABLE[candidate].denyDirectJobsFrameworkWrites) return candidate;
  }
  return PHASES[0];
}
