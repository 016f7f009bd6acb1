// The node e2e tests' switches on top of scripts/control-plane/chart-on-node.ts (the chart's pods on a real node).
import { note } from '../../scripts/control-plane/chart-on-node.js';

export * from '../../scripts/control-plane/chart-on-node.js';

export const nodeE2eEnabled = process.env['JOBS_STORAGE_NODE_E2E'] !== '0';

/** The line a node e2e file prints instead of running when JOBS_STORAGE_NODE_E2E=0. */
export function noteLeftOut(file: string): void {
  note(`${file} left out (JOBS_STORAGE_NODE_E2E=0): run it with npm test -- ${file} (root)`);
}
