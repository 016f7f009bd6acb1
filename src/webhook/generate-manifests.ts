/**
 * Writes webhook-config/*.yaml from the configuration (defaults, or `--config <file>`), so the writer, break-glass
 * and controller lists have one source. `--check` exits 1 when the files differ instead of writing.
 * Usage: npx tsx src/webhook/generate-manifests.ts [--config <file>] [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { renderManifestFiles } from './manifests.js';

const args = process.argv.slice(2);
const configAt = args.indexOf('--config');
const file = configAt >= 0 ? args[configAt + 1] : undefined;
const check = args.includes('--check');
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'webhook-config');

let stale = 0;
for (const [name, text] of Object.entries(renderManifestFiles(loadConfig({ file, env: {} })))) {
  const path = join(dir, name);
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = '';
  }
  if (current === text) continue;
  if (check) {
    stale += 1;
    process.stderr.write(`${path} is out of date; run: npx tsx src/webhook/generate-manifests.ts\n`);
  } else {
    writeFileSync(path, text);
    process.stderr.write(`wrote ${path}\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
