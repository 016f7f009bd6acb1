/**
 * Import benchmark: N tools × M jobs-api CronJobs without any CR in a local control plane, then `jobs-storage
 * import` (a child process running dist/main.js) next to a bare client (a child process of its own: a paginated LIST
 * of the CronJobs, then a POST of each one's CR at the same concurrency, 409 counted as "existed"), in the same run.
 * The CRs are deleted before every run; runs alternate import, bare; the figures are medians.
 *
 * The bare client knows the CR of each CronJob in advance (the parent computes them), so it parses nothing: its
 * create phase alone is the fastest this API server takes these CRs at this concurrency. Both rates are printed;
 * the ratio is judged against the bare client's whole run (LIST + POSTs), the same work the import must do, and the
 * ratio against the create phase alone is printed beside it.
 *
 *   npx tsx test/bench/import.ts [--tools 4000] [--jobs 5] [--runs 3]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeApi } from '../../src/k8s/api.js';
import { IMPORT_BACKFILL_IN_FLIGHT } from '../../src/sync/backfill.js';
import { JOBS_STORAGE_SA, REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob } from '../../scripts/control-plane/jobs.js';
import { buildDist, measure, pool, seedCluster } from './cluster.js';
import type { Measured } from './cluster.js';
import { median } from './median.js';

const { values } = parseArgs({
  options: {
    tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
    jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
    runs: { type: 'string', default: '3' },
  },
});
const TOOLS = Number(values.tools);
const JOBS = Number(values.jobs);
const RUNS = Number(values.runs);
const PAGE = Number(process.env['BENCH_PAGE'] ?? 500);
/** The bare client writes at the import's concurrency unless told otherwise (to compare widths). */
const WIDTH = Number(process.env['BENCH_IMPORT_WIDTH'] ?? IMPORT_BACKFILL_IN_FLIGHT);
const CRS = '/apis/jobs-api.toolforge.org/v1';

/** The bare client: LIST the CronJobs page by page, then POST each one's CR, `width` at once. */
function writeBareImportScript(file: string): void {
  writeFileSync(
    file,
    `import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from '${join(REPO_ROOT, 'node_modules/yaml/dist/index.js')}';
const [kcPath, crsPath, width] = process.argv.slice(2);
const kc = parse(readFileSync(kcPath, 'utf8'));
const crs = JSON.parse(readFileSync(crsPath, 'utf8'));
const server = new URL(kc.clusters[0].cluster.server);
const user = kc.users[0].user;
const b64 = (s) => s && Buffer.from(s, 'base64');
const agent = new https.Agent({ keepAlive: true, ca: b64(kc.clusters[0].cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']) });
const headers = { accept: 'application/json', ...(user.token ? { authorization: 'Bearer ' + user.token } : {}) };
const call = (method, path, body) => new Promise((resolve, reject) => {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const req = https.request(new URL(path, server), { method, agent, headers: data ? { ...headers, 'content-type': 'application/json' } : headers }, (res) => {
    const chunks = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() })); res.on('error', reject);
  });
  req.on('error', reject);
  req.end(data);
});
const t0 = performance.now();
const jobs = [];
let token = '';
do {
  const res = await call('GET', '/apis/batch/v1/cronjobs?limit=${PAGE}' + (token ? '&continue=' + encodeURIComponent(token) : ''));
  const page = JSON.parse(res.body);
  for (const item of page.items) jobs.push(item.metadata.namespace + '/' + item.metadata.name);
  token = page.metadata.continue || '';
} while (token);
const t1 = performance.now();
let created = 0, existed = 0, failed = 0, i = 0;
await Promise.all(Array.from({ length: Number(width) }, async () => {
  while (i < jobs.length) {
    const key = jobs[i++];
    const cr = crs[key];
    if (!cr) { failed++; continue; }
    const res = await call('POST', '${CRS}/namespaces/' + cr.metadata.namespace + '/scheduled-jobs', cr);
    if (res.status === 201) created++; else if (res.status === 409) existed++; else failed++;
  }
}));
const t2 = performance.now();
console.log('bare listed ' + jobs.length + ' in ' + ((t1 - t0) / 1000).toFixed(3) + ' s; created ' + created + ', existed ' + existed + ', failed ' + failed + ' in ' + ((t2 - t1) / 1000).toFixed(3) + ' s');
`,
  );
}

/** Deletes every CR (one collection delete per tool namespace) and checks none is left. */
async function deleteCrs(admin: KubeApi, tools: readonly string[]): Promise<void> {
  await pool(tools, 32, async (tool) => {
    await admin.request('DELETE', `${CRS}/namespaces/tool-${tool}/scheduled-jobs`);
  });
  const left = await admin.request<{ items: unknown[] }>('GET', `${CRS}/scheduled-jobs`, { query: { limit: 1 } });
  if (left.items.length > 0) throw new Error('CRs left after the delete');
}

interface ImportRun extends Measured {
  created: number;
  existed: number;
  skipped: number;
  failed: number;
}

interface BareRun extends Measured {
  listed: number;
  listSeconds: number;
  created: number;
  existed: number;
  failed: number;
  createSeconds: number;
}

function parseImport(m: Measured): ImportRun {
  const s = /created (\d+), already present (\d+), skipped (\d+), failed (\d+) in/.exec(m.stdout ?? '');
  if (!s) throw new Error(`import printed no summary: ${(m.stdout ?? '').slice(-500)}`);
  return { ...m, created: Number(s[1]), existed: Number(s[2]), skipped: Number(s[3]), failed: Number(s[4]) };
}

function parseBare(m: Measured): BareRun {
  const s = /bare listed (\d+) in ([\d.]+) s; created (\d+), existed (\d+), failed (\d+) in ([\d.]+) s/.exec(
    m.stdout ?? '',
  );
  if (!s) throw new Error(`the bare client printed no summary: ${m.stdout ?? ''}`);
  return {
    ...m,
    listed: Number(s[1]),
    listSeconds: Number(s[2]),
    created: Number(s[3]),
    existed: Number(s[4]),
    failed: Number(s[5]),
    createSeconds: Number(s[6]),
  };
}

async function main(): Promise<void> {
  buildDist();
  const { cp, tools, cronJobs } = await seedCluster(TOOLS, JOBS, { storedShare: 0 });
  try {
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-'));
    const configFile = join(dir, 'config.json');
    const kubeconfig = cp.kubeconfigPath('jobs-storage-sync');
    writeFileSync(
      configFile,
      JSON.stringify({
        logLevel: 'warn',
        kubeconfig,
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: { listPageSize: PAGE },
      }),
    );
    const crsFile = join(dir, 'crs.json');
    const crs: Record<string, unknown> = {};
    for (const tool of tools) {
      for (let j = 0; j < JOBS; j++) crs[`tool-${tool}/job-${j}`] = crOf(scheduledJob(tool, `job-${j}`));
    }
    writeFileSync(crsFile, JSON.stringify(crs));
    const bareScript = join(dir, 'bare-import.mjs');
    writeBareImportScript(bareScript);

    // An import meets standing jobs: a workload created less than 30 s ago is read again before its CR is written
    // (docs/adr/0005), which a freshly seeded cluster would otherwise measure.
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    const imports: ImportRun[] = [];
    const bares: BareRun[] = [];
    for (let run = 0; run < RUNS; run++) {
      await deleteCrs(admin, tools);
      const i = parseImport(await measure([join(REPO_ROOT, 'dist/main.js'), 'import', '--config', configFile], 'exit'));
      imports.push(i);
      await deleteCrs(admin, tools);
      const b = parseBare(await measure([bareScript, kubeconfig, crsFile, String(WIDTH)], 'exit'));
      bares.push(b);
      console.error(
        `[bench] run ${run + 1}: import ${i.seconds.toFixed(2)} s (created ${i.created}, present ${i.existed}, ` +
          `skipped ${i.skipped}, failed ${i.failed}; peak RSS ${i.peakRssMb.toFixed(0)} MB), bare ${b.seconds.toFixed(2)} s ` +
          `(LIST ${b.listSeconds.toFixed(2)} s, POSTs ${b.createSeconds.toFixed(2)} s, created ${b.created})`,
      );
    }
    const importRate = median(imports.map((m) => m.created / m.seconds));
    const bareRate = median(bares.map((m) => m.created / m.seconds));
    const createRate = median(bares.map((m) => m.created / m.createSeconds));
    const correct = imports.every((m) => m.created === cronJobs && m.existed + m.skipped + m.failed === 0);
    console.log(
      `import benchmark: ${TOOLS} tools × ${JOBS} jobs (${cronJobs} CronJobs, no CRs), ${WIDTH} writes in flight, ` +
        `page size ${PAGE}, median of ${RUNS}, each run after deleting every CR`,
    );
    console.log(
      `  jobs-storage import (child process, start to exit): ${importRate.toFixed(0)} CRs/s, ` +
        `${median(imports.map((m) => m.seconds)).toFixed(2)} s, peak RSS ${Math.max(...imports.map((m) => m.peakRssMb)).toFixed(0)} MB`,
    );
    console.log(
      `  totals: ${imports.map((m) => `created ${m.created}, present ${m.existed}, skipped ${m.skipped}, failed ${m.failed}`).join(' | ')}` +
        ` — ${correct ? 'correct' : 'WRONG'} (expected created ${cronJobs} and nothing else)`,
    );
    console.log(
      `  bare client (child process: paginated LIST + POSTs, start to exit): ${bareRate.toFixed(0)} CRs/s, ` +
        `${median(bares.map((m) => m.seconds)).toFixed(2)} s`,
    );
    console.log(`  bare client's create phase alone: ${createRate.toFixed(0)} CRs/s`);
    const cpuPerThousand = (runs: readonly (Measured & { created: number })[]) =>
      median(runs.map((m) => (m.cpuSeconds / Math.max(1, m.created)) * 1000));
    console.log(
      `  CPU per 1,000 CRs (user + system of the child): import ${cpuPerThousand(imports).toFixed(2)} s, ` +
        `bare client ${cpuPerThousand(bares).toFixed(2)} s — on a 2-core machine shared with kube-apiserver and etcd, ` +
        `the client's CPU is taken from the API server's`,
    );
    console.log(
      `  ratio import/bare client ${(importRate / bareRate).toFixed(2)} (target ≥ 0.8; judged against the bare ` +
        `client's whole run, which lists as the import must); import/bare create phase alone ` +
        `${(importRate / createRate).toFixed(2)}`,
    );
  } finally {
    await cp.stop();
  }
}

await main();
