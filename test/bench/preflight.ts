/**
 * Preflight core benchmark: N tools × M jobs, every job a CR and a live CronJob shaped as the API server returns it
 * (the v2-scheduled-absolute-logs fixture, with its managedFields, defaults and status, renamed per tool and job),
 * served as JSON LIST pages of the given size. Two child processes, each timing only its own work (page text is
 * generated one page at a time, untimed, as a client receives it):
 *   bare      — JSON.parse of every page (what any client pays for a paginated LIST, minus the network);
 *   preflight — the same parse, and preflightTool for each tool as soon as both lists have passed it, then the
 *               cluster-wide report.
 * Figures are medians of the runs; the RSS is each process's peak (VmHWM). This measures the pure core; the
 * reading of the objects over the API adds the same network time to both.
 *
 *   npx tsx test/bench/preflight.ts [--tools 4000] [--jobs 5] [--runs 3] [--page 500]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ScheduledJob } from '../../src/jobs/index.js';
import { preflightReport, preflightTool } from '../../src/preflight/preflight.js';
import { loadWorkload } from '../fixtures/workloads/load.js';
import { parseWorkload } from '../../src/runtime/parse.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../src/runtime/settings.js';
import { createStorageCodec } from '../../src/storage/codec.js';
import { median } from './median.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
    jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
    runs: { type: 'string', default: '3' },
    page: { type: 'string', default: '500' },
  },
});
const TOOLS = Number(values.tools);
const JOBS = Number(values.jobs);
const PAGE = Number(values.page);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Mode = 'bare' | 'preflight';
interface Figure {
  seconds: number;
  peakRssMb: number;
}

/** The JSON text of one CronJob and of its CR, with the tool and job names as placeholders. */
function templates(): { cronjob: string; cr: string } {
  const template = loadWorkload('v2-scheduled-absolute-logs') as Obj;
  const parsed = parseWorkload(template, DEFAULT_RUNTIME_SETTINGS);
  if (!parsed.ok) throw new Error(parsed.problem.message);
  return {
    cronjob: JSON.stringify(template),
    cr: JSON.stringify(createStorageCodec().encode(parsed.value.job as ScheduledJob)),
  };
}

/**
 * The LIST pages of one resource, generated one at a time (a client holds one page at a time too), in the API
 * server's order: by namespace, then name.
 */
function* pages(template: string, kind: string): Generator<string> {
  let items: string[] = [];
  for (let t = 0; t < TOOLS; t++) {
    const tool = `t${String(t).padStart(5, '0')}`;
    for (let j = 0; j < JOBS; j++) {
      items.push(template.replaceAll('mytool', tool).replaceAll('backup', `job-${j}`));
      if (items.length === PAGE) {
        yield `{"kind":"${kind}List","metadata":{},"items":[${items.join(',')}]}`;
        items = [];
      }
    }
  }
  if (items.length > 0) yield `{"kind":"${kind}List","metadata":{},"items":[${items.join(',')}]}`;
}

/** The items of a list, page by page as they arrive, with the time spent parsing added to `clock`. */
function* items(template: string, kind: string, clock: { busy: bigint }): Generator<Obj> {
  for (const page of pages(template, kind)) {
    const started = process.hrtime.bigint();
    const parsed = (JSON.parse(page) as { items: Obj[] }).items;
    clock.busy += process.hrtime.bigint() - started;
    yield* parsed;
  }
}

function toolOf(obj: Obj | undefined): string | undefined {
  const ns = obj?.['metadata']?.namespace;
  return typeof ns === 'string' ? ns.slice('tool-'.length) : undefined;
}

/** The next tool's items of a namespace-ordered list: `[tool, items]`, the iterator advanced past them. */
function takeTool(it: Iterator<Obj>, head: { next: Obj | undefined }, tool: string): Obj[] {
  const out: Obj[] = [];
  while (head.next !== undefined && toolOf(head.next) === tool) {
    out.push(head.next);
    const n = it.next();
    head.next = n.done ? undefined : n.value;
  }
  return out;
}

/**
 * In a child: parse every page (bare), or also compare tool by tool while the pages arrive (preflight): both lists
 * come ordered by namespace, so a tool is complete when both have moved past it, and only its objects are held.
 */
function child(mode: Mode): void {
  const { cronjob, cr } = templates();
  const clock = { busy: 0n };
  const crIt = items(cr, 'ScheduledJob', clock);
  const objIt = items(cronjob, 'CronJob', clock);
  let count = 0;
  let exit = 0;
  if (mode === 'bare') {
    for (const _ of crIt) count++;
    for (const _ of objIt) count++;
  } else {
    const crHead = { next: crIt.next().value as Obj | undefined };
    const objHead = { next: objIt.next().value as Obj | undefined };
    const tools = [];
    for (;;) {
      const tool = [toolOf(crHead.next), toolOf(objHead.next)].filter((t) => t !== undefined).sort()[0];
      if (tool === undefined) break;
      const crs = takeTool(crIt, crHead, tool);
      const objects = takeTool(objIt, objHead, tool);
      count += crs.length + objects.length;
      const started = process.hrtime.bigint();
      tools.push(preflightTool(tool, crs, objects, { runtime: DEFAULT_RUNTIME_SETTINGS }));
      clock.busy += process.hrtime.bigint() - started;
    }
    const report = preflightReport(tools);
    exit = report.exitCode;
    if (report.totals.jobs !== TOOLS * JOBS) throw new Error(`compared ${report.totals.jobs} jobs`);
  }
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  const seconds = Number(clock.busy) / 1e9;
  console.log(JSON.stringify({ mode, objects: count, seconds, peakRssMb: Number(hwm ?? 0) / 1024, exit }));
}

function main(): void {
  const runs = Number(values.runs);
  const results: Record<Mode, Figure[]> = { bare: [], preflight: [] };
  for (let run = 0; run < runs; run++) {
    for (const mode of ['bare', 'preflight'] as const) {
      const res = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          `--tools=${TOOLS}`,
          `--jobs=${JOBS}`,
          `--page=${PAGE}`,
          mode,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      if (res.status !== 0) throw new Error(`${mode} child failed (${res.status})`);
      const figure = JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '{}') as Figure;
      results[mode].push(figure);
      console.error(
        `[bench] run ${run + 1} ${mode}: ${figure.seconds.toFixed(2)} s, ${figure.peakRssMb.toFixed(0)} MB`,
      );
    }
  }
  const b = median(results.bare.map((r) => r.seconds));
  const p = median(results.preflight.map((r) => r.seconds));
  const bareRss = Math.max(...results.bare.map((r) => r.peakRssMb));
  const rss = Math.max(...results.preflight.map((r) => r.peakRssMb));
  console.log(
    `preflight core benchmark: ${TOOLS} tools × ${JOBS} jobs (${TOOLS * JOBS} CRs and CronJobs), LIST pages of ${PAGE}, median of ${runs}`,
  );
  console.log(`  bare: parse the LIST pages:        ${b.toFixed(2)} s, peak RSS ${bareRss.toFixed(0)} MB`);
  console.log(`  preflight: parse, group, compare:  ${p.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB`);
  console.log(`  ratio ${(p / b).toFixed(2)}× (target ≤ 2×), peak RSS ${rss.toFixed(0)} MB (target ≤ 200 MB)`);
}

if (positionals[0] === 'bare' || positionals[0] === 'preflight') child(positionals[0]);
else main();
