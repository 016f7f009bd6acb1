import { UsageError } from '../../errors.js';
import { createSharedMetrics } from '../../metrics/registry.js';
import { isPhase, startsDenying } from '../../phase/behaviour.js';
import type { Phase } from '../../phase/behaviour.js';
import { getPhase, setPhase } from '../../phase/store.js';
import type { PhaseState } from '../../phase/store.js';
import { connect, failFast } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { EXIT, writeDocument } from '../io.js';
import type { CliIo, DocumentFormat } from '../io.js';

/** `jobs-storage phase get`: the phase stored in the ConfigMap and its last changes. */
export async function runPhaseGet(opts: ClusterFlags & { output?: DocumentFormat }, io: CliIo): Promise<number> {
  const session = await connect(opts, 'phase get', io, createSharedMetrics);
  const state = await failFast(session, () => getPhase(session.api, session.config));
  if (state.invalid !== undefined) {
    io.stderr(
      `jobs-storage: the phase ConfigMap holds '${state.invalid}', which is not a phase; webhook and sync keep their last known phase\n`,
    );
    return EXIT.inputErrors;
  }
  if (opts.output !== undefined) {
    writeDocument(io, phaseDocument(state), opts.output);
    return EXIT.ok;
  }
  io.stdout(`${state.phase}${state.stored ? '' : ' (not set; the configured initial phase applies)'}\n`);
  for (const h of state.history.slice(-5))
    io.stdout(`  ${h.at} ${h.previous ?? '-'} → ${h.phase} by ${h.by}${h.reason ? `: ${h.reason}` : ''}\n`);
  return EXIT.ok;
}

/** What `phase get -o json|yaml` prints: the phase, whether it is stored, and the whole history kept. */
function phaseDocument(state: PhaseState): Pick<PhaseState, 'phase' | 'stored' | 'history'> {
  return { phase: state.phase, stored: state.stored, history: state.history };
}

/** What a phase that denies direct writes does, for the question asked before switching to it. */
const DENYING_MEANS =
  'the webhook will deny every create or update of a workload with jobs-framework labels outside jobs-api, ' +
  'and jobs-api will no longer list jobs without a CR';

/**
 * Whether a switch that starts denying direct writes may go ahead: `--yes`, or "y" read from a terminal. Without a
 * terminal to ask on, refused with what to add.
 */
async function confirmDenying(from: Phase, to: Phase, yes: boolean, io: CliIo): Promise<boolean> {
  if (yes) return true;
  if (io.stdinIsTTY !== true || io.ask === undefined)
    throw new UsageError(
      `phase set ${to}: ${DENYING_MEANS}; stdin is not a terminal to confirm on: add --yes to switch from ${from} to ${to}`,
    );
  const answer = await io.ask(`Switch the phase from ${from} to ${to}? In ${to} ${DENYING_MEANS}. [y/N] `);
  return /^\s*y(es)?\s*$/i.test(answer);
}

/**
 * `jobs-storage phase set <phase>`: writes the phase and appends the change to its history, recorded as made by the
 * caller's API identity (SelfSubjectReview). A switch that starts denying direct writes (to `enforce`) asks first
 * (`--yes` skips the question).
 */
export async function runPhaseSet(
  phase: string,
  opts: ClusterFlags & { reason?: string; yes?: boolean; output?: DocumentFormat },
  io: CliIo,
): Promise<number> {
  if (!isPhase(phase)) throw new UsageError(`unknown phase '${phase}'`);
  const session = await connect(opts, 'phase set', io, createSharedMetrics);
  const { api, config, caller } = session;
  return failFast(session, async () => {
    const current = await getPhase(api, config);
    if (startsDenying(current.phase, phase) && !(await confirmDenying(current.phase, phase, opts.yes === true, io))) {
      io.stderr('jobs-storage: phase not changed (not confirmed)\n');
      return EXIT.inputErrors;
    }
    const change = await setPhase(api, config, phase, {
      by: caller.name,
      ...(opts.reason ? { reason: opts.reason } : {}),
    });
    if (opts.output !== undefined) writeDocument(io, change, opts.output);
    else io.stdout(`phase: ${change.previous ?? '(unset)'} → ${change.phase} (by ${change.by})\n`);
    return EXIT.ok;
  });
}
