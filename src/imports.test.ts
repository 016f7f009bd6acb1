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

// ---- One path for workloads: the reader, the kinds, the phase table and the result shape are each said once ----

/** Production modules (tests and test helpers may build fixtures however they like). */
function productionFiles(): string[] {
  return sourceFiles(SRC).filter((f) => !/\.test(-helper)?\.ts$/.test(f));
}

/** `[file, offence]` for each offence `find` reports in a production module not exempted. */
function offences(find: (text: string) => string[], exempt: ReadonlySet<string> = new Set()): string[] {
  return productionFiles()
    .map((f) => relative(SRC, f))
    .filter((f) => !exempt.has(f))
    .flatMap((f) => find(readFileSync(join(SRC, f), 'utf8')).map((o) => `${f}: ${o}`));
}

/** Imports or re-exports that name the workload parser or classifier. */
function readerBypasses(text: string): string[] {
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s*(?:type\s*)?\{([^}]*)\}\s*from/g)]
    .flatMap((m) => (m[1] ?? '').split(',').map((n) => n.trim().split(/\s/)[0] ?? ''))
    .filter((name) => name === 'parseWorkload' || name === 'classifyWorkload');
}

/**
 * Literal lists of workload kinds: an array, object or union naming both `CronJob` and `Deployment` (as strings, or
 * as the keys of a string-valued map).
 */
function kindLists(text: string): string[] {
  const both = (s: string, a: RegExp, b: RegExp) => a.test(s) && b.test(s);
  const spans = [...text.matchAll(/\[[^[\]]*\]|\{[^{}]*\}|'[A-Za-z]+'(?:\s*\|\s*'[A-Za-z]+')+/g)].map((m) => m[0]);
  return spans
    .filter((s) => both(s, /'CronJob'/, /'Deployment'/) || both(s, /\bCronJob:\s*['"`]/, /\bDeployment:\s*['"`]/))
    .map((s) => s.replace(/\s+/g, ' ').slice(0, 60));
}

const PHASE_NAME = "'(?:runtime-truth|storage-truth|ignore-unmanaged|enforce)'";

/** Comparisons of a phase with `===`/`!==` (against anything but undefined), or of anything with a phase name. */
function phaseComparisons(text: string): string[] {
  const re = new RegExp(
    `\\bphase\\s*[!=]==\\s*(?!undefined\\b)\\S+|[!=]==\\s*${PHASE_NAME}|${PHASE_NAME}\\s*[!=]==`,
    'g',
  );
  return [...text.matchAll(re)].map((m) => m[0]);
}

/** Result shapes written out (`{ ok: false; …` / `{ ok: true; …` types, or such objects) instead of errors.ts's. */
function resultShapes(text: string): string[] {
  return [...text.matchAll(/\{\s*ok:\s*(?:true|false)\s*[;,][^}\n]*/g)].map((m) => m[0].slice(0, 60));
}

test('the one-path rules see what they must see', () => {
  assert.deepEqual(readerBypasses("import { isObject, parseWorkload, type KObject } from '../runtime/index.js';"), [
    'parseWorkload',
  ]);
  assert.deepEqual(readerBypasses("export { classifyWorkload } from './classify.js';"), ['classifyWorkload']);
  assert.deepEqual(readerBypasses("import { readWorkload } from '../runtime/read.js';"), []);
  assert.equal(kindLists("const K = ['CronJob', 'Deployment', 'Job'];").length, 1);
  assert.equal(kindLists("type K = 'CronJob' | 'Deployment' | 'Job';").length, 1);
  assert.equal(kindLists("const P = { CronJob: 'cronjobs', Deployment: 'deployments' };").length, 1);
  assert.equal(kindLists("const S = [{ plural: 'cronjobs' }, { plural: 'deployments' }];").length, 0);
  assert.equal(kindLists("if (kind === 'CronJob') return 'Deployment';").length, 0);
  assert.equal(phaseComparisons("const b = phase === 'runtime-truth' || phase === 'storage-truth';").length, 2);
  assert.equal(phaseComparisons('if (ctx.input.phase !== undefined) return;').length, 0);
  assert.equal(resultShapes('type R = { ok: true; value: T } | { ok: false; error: string };').length, 2);
  assert.equal(resultShapes('return ok(value);').length, 0);
});

test('workloads are read through runtime/read: no module but runtime/read imports parseWorkload or classifyWorkload', () => {
  assert.deepEqual(offences(readerBypasses, new Set(['runtime/read.ts'])), []);
});

test('workload kinds are listed once: runtime/kinds (workloads) and storage/kinds (job CRs)', () => {
  const exempt = new Set(['runtime/kinds.ts', 'storage/kinds.ts']);
  assert.deepEqual(offences(kindLists, exempt), []);
});

test('phase decisions are read from the phase table: no phase comparisons outside phase/', () => {
  const inPhase = new Set(
    productionFiles()
      .map((f) => relative(SRC, f))
      .filter((f) => f.startsWith('phase/')),
  );
  assert.deepEqual(offences(phaseComparisons, inPhase), []);
});

test('one result shape: no module but errors.ts writes out an { ok: … } result type', () => {
  assert.deepEqual(offences(resultShapes, new Set(['errors.ts'])), []);
});

// ---- The floor plan: which module may import which ----

/**
 * The top-level modules of src/ (a folder, or a file at the top), floor by floor from the bottom up. A module
 * imports only from floors below its own; modules side by side on a floor never import each other.
 */
const FLOORS: readonly (readonly string[])[] = [
  ['errors.ts', 'version.ts', 'log/', 'rollout/'], // leaves: typed errors, the build, the logger, the phase names
  ['jobs/', 'config/', 'http/'], // the job model, the one config schema, the probe routes and small HTTP server
  ['k8s/', 'storage/', 'runtime/', 'metrics/'], // the API client; job CRs; workloads; every metric
  ['phase/', 'preflight/'], // the phase table and its ConfigMap; the read-only check of a cluster
  ['migrate/', 'webhook/', 'sync/'], // the three products
  ['admin/'], // the sync's admin API: presents the sync and preflight
  ['cli/'], // the commands and the composition root
  ['cli.ts'],
  ['main.ts'],
];

/** The floor plan: each module and the modules its production code may import. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  'errors.ts': [],
  'version.ts': [],
  'log/': [],
  'rollout/': [],
  'jobs/': ['errors.ts'],
  'config/': ['errors.ts', 'rollout/'],
  'http/': [],
  'k8s/': ['errors.ts', 'log/', 'config/'],
  'storage/': ['errors.ts', 'jobs/'],
  'runtime/': ['errors.ts', 'jobs/', 'config/'],
  'metrics/': ['rollout/'],
  'phase/': ['errors.ts', 'log/', 'rollout/', 'config/', 'k8s/'],
  'preflight/': ['errors.ts', 'jobs/', 'k8s/', 'storage/', 'runtime/'],
  'migrate/': ['errors.ts', 'rollout/', 'jobs/', 'k8s/', 'storage/', 'runtime/', 'phase/', 'preflight/'],
  'webhook/': [
    ...['errors.ts', 'log/', 'rollout/', 'jobs/', 'config/', 'http/'],
    ...['storage/', 'runtime/', 'metrics/', 'phase/'],
  ],
  'sync/': [
    ...['errors.ts', 'log/', 'rollout/', 'jobs/', 'config/', 'http/'],
    ...['k8s/', 'storage/', 'runtime/', 'metrics/', 'phase/'],
  ],
  'admin/': ['errors.ts', 'log/', 'http/', 'k8s/', 'metrics/', 'preflight/', 'sync/'],
  'cli/': [
    ...['errors.ts', 'version.ts', 'log/', 'rollout/', 'jobs/', 'config/', 'http/'],
    ...['k8s/', 'storage/', 'runtime/', 'metrics/', 'phase/', 'preflight/'],
    ...['migrate/', 'webhook/', 'sync/', 'admin/'],
  ],
  'cli.ts': ['errors.ts', 'version.ts', 'rollout/', 'cli/'],
  'main.ts': ['cli.ts'],
};

/** The top-level module of a path relative to src/: its first folder (`k8s/`), or the file itself (`cli.ts`). */
function moduleOf(path: string): string {
  const slash = path.indexOf('/');
  return slash < 0 ? path : path.slice(0, slash + 1);
}

/** The arrows (`file → file`, relative to src/) between modules that the floor plan does not allow. */
function offFloorPlan(arrows: Iterable<readonly [string, string]>): string[] {
  const offences: string[] = [];
  for (const [from, to] of arrows) {
    const [a, b] = [moduleOf(from), moduleOf(to)];
    if (a !== b && !(MAY_IMPORT[a] ?? []).includes(b)) offences.push(`${from} → ${to}`);
  }
  return offences;
}

/** The arrows of src/'s production code, relative to src/. */
function productionArrows(): Array<[string, string]> {
  const production = new Set(productionFiles());
  return [...importGraph(sourceFiles(SRC))]
    .filter(([file]) => production.has(file))
    .flatMap(([file, targets]) => targets.map((t): [string, string] => [relative(SRC, file), relative(SRC, t)]));
}

test('the floor plan itself runs one way: every module it names imports only from floors below its own', () => {
  const floorOf = new Map(FLOORS.flatMap((floor, i) => floor.map((m): [string, number] => [m, i])));
  assert.deepEqual(
    [...floorOf.keys()].sort(),
    Object.keys(MAY_IMPORT).sort(),
    'the floors and the table name the same modules',
  );
  const upward = Object.entries(MAY_IMPORT).flatMap(([m, targets]) =>
    targets.filter((t) => (floorOf.get(t) ?? Infinity) >= (floorOf.get(m) ?? -Infinity)).map((t) => `${m} → ${t}`),
  );
  assert.deepEqual(upward, []);
});

test('the floor plan check catches an arrow that runs up, one between neighbours and one from an unplanned module', () => {
  assert.deepEqual(
    offFloorPlan([
      ['config/schema.ts', 'rollout/phases.ts'],
      ['config/schema.ts', 'config/load.ts'],
      ['cli/compose.ts', 'admin/app.ts'],
      ['config/schema.ts', 'phase/behaviour.ts'],
      ['metrics/registry.ts', 'phase/source.ts'],
      ['sync/loop.ts', 'admin/app.ts'],
      ['runtime/parse.ts', 'storage/codec.ts'],
      ['webhook/server.ts', 'sync/loop.ts'],
      ['extra/thing.ts', 'errors.ts'],
    ]),
    [
      'config/schema.ts → phase/behaviour.ts',
      'metrics/registry.ts → phase/source.ts',
      'sync/loop.ts → admin/app.ts',
      'runtime/parse.ts → storage/codec.ts',
      'webhook/server.ts → sync/loop.ts',
      'extra/thing.ts → errors.ts',
    ],
  );
  const arrows = productionArrows();
  assert.ok(
    arrows.some(([from, to]) => from === 'cli/compose.ts' && to === 'admin/app.ts'),
    'a dynamic import',
  );
  assert.ok(
    arrows.every(([from]) => !from.endsWith('.test.ts')),
    'tests are left out',
  );
});

test('every module of src/ is on the floor plan', () => {
  const modules = new Set(productionFiles().map((f) => moduleOf(relative(SRC, f))));
  assert.deepEqual(
    [...modules].filter((m) => !(m in MAY_IMPORT)),
    [],
  );
});

test('src/ follows the floor plan: no import runs up or sideways', () => {
  assert.deepEqual(offFloorPlan(productionArrows()), []);
});

test('migrate/ plans offline: of k8s/ it imports only the YAML dialect kubectl reads, never the client or its lists', () => {
  const intoK8s = productionArrows().filter(([from, to]) => from.startsWith('migrate/') && to.startsWith('k8s/'));
  assert.deepEqual(
    intoK8s.filter(([, to]) => to !== 'k8s/yaml.ts').map(([from, to]) => `${from} → ${to}`),
    [],
  );
});
