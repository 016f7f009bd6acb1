import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'workloads');

/** A fresh copy of a workload fixture on every call. */
export function loadWorkload(name: string): unknown {
  return parse(readFileSync(join(FIXTURES, `${name}.yaml`), 'utf8')) as unknown;
}
