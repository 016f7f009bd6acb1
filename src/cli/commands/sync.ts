import { syncProcess } from '../compose.js';
import type { Process } from '../process.js';

/**
 * `jobs-storage sync`: the sync with its metrics and probes (`sync.host:sync.port`) and its admin API (loopback
 * `admin.host:admin.port`), as a process the CLI runs until SIGTERM/SIGINT.
 */
export function syncCommand(opts: { config?: string }): Promise<Process> {
  return syncProcess(opts.config);
}
