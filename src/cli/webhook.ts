import type { CliIo } from '../cli.js';
import { loadCredentials } from '../k8s/credentials.js';
import { VERSION } from '../version.js';
import { runWebhook } from '../webhook/server.js';
import { loadCommon } from './serve.js';

/** `jobs-storage webhook`: serves until SIGTERM/SIGINT, then drains. */
export async function runWebhookCommand(opts: { config?: string }, _io: CliIo): Promise<number> {
  const { config, logger, metrics } = loadCommon(opts.config, 'webhook');
  const handle = await runWebhook({
    config,
    logger,
    metrics,
    credentials: await loadCredentials(config),
    version: VERSION,
  });
  await handle.closed;
  return 0;
}
