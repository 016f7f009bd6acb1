/**
 * Preflight core benchmark: N tools × M jobs, every job a CR and a live CronJob shaped as the API server returns it
 * (the v2-scheduled-absolute-logs fixture, with its managedFields, defaults and status, renamed per tool and job),
 * served as JSON LIST pages of the given size. Two child processes, each timing only its own work (page text is
 * generated one page at a time, untimed, as a client receives it):
 *   bare      — JSON.parse of every page (what any client pays for a paginated LIST, minus the network);
 *   preflight — the same parse, grouped by tool, then preflightTool for each tool and the cluster-wide report.
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
import { loadWorkload } from '../../src/runtime/fixtures.test-helper.js';
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
  if (!parsed.ok) throw new Error(parsed.error.message);
  return {
    cronjob: JSON.stringify(template),
    cr: JSON.stringify(createStorageCodec().encode(parsed.job as ScheduledJob)),
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

/** Files an object under its tool (namespace `tool-<tool>`). */
function group(byTool: Map<string, { crs: Obj[]; objects: Obj[] }>, item: Obj, key: 'crs' | 'objects'): void {
  const tool = String(item['metadata']?.namespace ?? '').slice('tool-'.length);
  let entry = byTool.get(tool);
  if (!entry) byTool.set(tool, (entry = { crs: [], objects: [] }));
  entry[key].push(item);
}

/** In a child: parse (and for preflight, group and compare) every page; prints its figures as JSON. */
function child(mode: Mode): void {
  const { cronjob, cr } = templates();
  let busy = 0n;
  let count = 0;
  const byTool = new Map<string, { crs: Obj[]; objects: Obj[] }>();
  for (const [template, kind, key] of [
    [cr, 'ScheduledJob', 'crs'],
    [cronjob, 'CronJob', 'objects'],
  ] as const) {
    for (const page of pages(template, kind)) {
      const started = process.hrtime.bigint();
      const items = (JSON.parse(page) as { items: Obj[] }).items;
      count += items.length;
      if (mode === 'preflight') for (const item of items) group(byTool, item, key);
      busy += process.hrtime.bigint() - started;
    }
  }
  let exit = 0;
  if (mode === 'preflight') {
    const started = process.hrtime.bigint();
    const tools = [...byTool].map(([tool, e]) =>
      preflightTool(tool, e.crs, e.objects, { runtime: DEFAULT_RUNTIME_SETTINGS }),
    );
    const report = preflightReport(tools);
    busy += process.hrtime.bigint() - started;
    exit = report.exitCode;
    if (report.totals.jobs !== TOOLS * JOBS) throw new Error(`compared ${report.totals.jobs} jobs`);
  }
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  console.log(
    JSON.stringify({ mode, objects: count, seconds: Number(busy) / 1e9, peakRssMb: Number(hwm ?? 0) / 1024, exit }),
  );
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
