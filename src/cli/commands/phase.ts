import { createSharedMetrics } from '../../metrics/registry.js';
import { getPhase, setPhase } from '../../phase/store.js';
import { common } from '../compose.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

/** `jobs-storage phase get`: the phase stored in the ConfigMap and its last changes. */
export async function runPhaseGet(opts: { config?: string }, io: CliIo): Promise<number> {
  const { api, config } = await common(
    { configFile: opts.config, command: 'phase', oneShot: true },
    createSharedMetrics,
  );
  const state = await getPhase(api, config);
  if (state.invalid !== undefined) {
    io.stderr(
      `jobs-storage: the phase ConfigMap holds '${state.invalid}', which is not a phase; webhook and sync keep their last known phase\n`,
    );
    return EXIT.inputErrors;
  }
  io.stdout(`${state.phase}${state.stored ? '' : ' (not set; the configured initial phase applies)'}\n`);
  for (const h of state.history.slice(-5))
    io.stdout(`  ${h.at} ${h.previous ?? '-'} → ${h.phase} by ${h.by}${h.reason ? `: ${h.reason}` : ''}\n`);
  return EXIT.ok;
}

/** `jobs-storage phase set <phase>`: writes the phase and appends the change to its history. */
export async function runPhaseSet(
  phase: string,
  opts: { config?: string; reason?: string },
  io: CliIo,
): Promise<number> {
  const { api, config } = await common(
    { configFile: opts.config, command: 'phase', oneShot: true },
    createSharedMetrics,
  );
  const change = await setPhase(api, config, phase, { ...(opts.reason ? { reason: opts.reason } : {}) });
  io.stdout(`phase: ${change.previous ?? '(unset)'} → ${change.phase}\n`);
  return EXIT.ok;
}
