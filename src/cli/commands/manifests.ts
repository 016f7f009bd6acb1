import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { InputError, UsageError, errorMessage } from '../../errors.js';
import { renderManifestFiles } from '../../webhook/manifests.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError('ERR_INPUT_READ', `cannot read: ${errorMessage(err)}`, path, { cause: err });
  }
}

/**
 * `jobs-storage manifests`: writes the ValidatingWebhookConfiguration and the ValidatingAdmissionPolicy from the
 * configuration (defaults, or `--config <file>`; never the environment), so the writer, break-glass and controller
 * lists have one source. `--check` writes nothing and exits 1 when a file differs: the drift check.
 */
export function runManifests(opts: { out: string; check: boolean; config?: string }, io: CliIo): number {
  const files = renderManifestFiles(loadConfig({ file: opts.config, env: {} }));
  let stale = 0;
  for (const [name, text] of Object.entries(files)) {
    const path = join(opts.out, name);
    if (readIfPresent(path) === text) continue;
    if (opts.check) {
      stale += 1;
      io.stderr(`${path} is out of date; run: jobs-storage manifests --out ${opts.out}\n`);
      continue;
    }
    try {
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(path, text);
    } catch (err) {
      throw new UsageError(`--out ${opts.out}: cannot write ${name}: ${errorMessage(err)}`);
    }
    io.stderr(`wrote ${path}\n`);
  }
  return stale > 0 ? EXIT.inputErrors : EXIT.ok;
}
