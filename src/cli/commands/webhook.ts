import { createWebhookMetrics } from '../../metrics/registry.js';
import { VERSION } from '../../version.js';
import { runWebhook } from '../../webhook/server.js';
import { common, webhookParts, withPhase } from '../compose.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

/** `jobs-storage webhook`: serves until SIGTERM/SIGINT, then drains. */
export async function runWebhookCommand(opts: { config?: string }, _io: CliIo): Promise<number> {
  const parts = await common({ configFile: opts.config, command: 'webhook' }, createWebhookMetrics);
  const { phase } = webhookParts(parts);
  const { config, logger, metrics } = parts;
  return withPhase(phase, async () => {
    const handle = await runWebhook({ config, logger, metrics, phase, version: VERSION });
    await handle.closed;
    return EXIT.ok;
  });
}
