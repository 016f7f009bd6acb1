import { webhookProcess } from '../compose.js';
import type { Process } from '../process.js';

/** `jobs-storage webhook`: the admission webhook, as a process the CLI serves until SIGTERM/SIGINT, then drains. */
export function webhookCommand(opts: { config?: string }): Promise<Process> {
  return webhookProcess(opts.config);
}
