import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = import.meta.dirname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Static imports and re-exports (type-only included) and dynamic `import('…')` with a relative specifier. */
const SPECIFIER =
  /(?:^|\s)(?:import|export)\s[^'";]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Each file's relative imports, as files under src/ (`.js` specifiers name `.ts` files). */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets: string[] = [];
    for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const specifier = match[1] ?? match[2] ?? '';
      const target = resolve(dirname(file), specifier).replace(/\.js$/, '.ts');
      if (known.has(target)) targets.push(target);
    }
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the files along it (first file repeated at the end). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const seen = state.get(next);
      if (seen === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (seen === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

test('the import walk sees the imports it must see', () => {
  const graph = importGraph(sourceFiles(SRC));
  const importsOf = (file: string) => (graph.get(join(SRC, file)) ?? []).map((f) => relative(SRC, f));
  assert.ok(importsOf('cli.ts').includes('cli/io.ts'), 'a static import');
  assert.ok(importsOf('cli.ts').includes('cli/commands/sync.ts'), 'a dynamic import');
  assert.ok(importsOf('cli/compose.ts').includes('phase/source.ts'), 'a parent-directory import');
  assert.deepEqual(
    findCycles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
      ]),
    ),
    [['a', 'b', 'c', 'a']],
  );
});

test('src/ has no import cycles', () => {
  const cycles = findCycles(importGraph(sourceFiles(SRC)));
  assert.deepEqual(
    cycles.map((cycle) => cycle.map((f) => relative(SRC, f)).join(' → ')),
    [],
  );
});

test('k8s/ is a client layer: it imports nothing from metrics/ or phase/', () => {
  const graph = importGraph(sourceFiles(SRC));
  const upward = [...graph]
    .filter(([file]) => relative(SRC, file).startsWith('k8s/'))
    .flatMap(([file, targets]) => targets.map((t) => `${relative(SRC, file)} → ${relative(SRC, t)}`))
    .filter((arrow) => / → (metrics|phase)\//.test(arrow));
  assert.deepEqual(upward, []);
});
