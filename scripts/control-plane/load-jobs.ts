import type { StoredJob } from '../../src/jobs/model.js';
import { KubeApi } from '../../src/k8s/api.js';
import { jobFromLoadEntry, type LoadEntry } from '../../src/migrate/index.js';
import { storageKindForJobType, STORAGE_API_VERSION } from '../../src/storage/kinds.js';
import type { ControlPlane } from './cluster.js';
import { crOf, workloadsOf } from './jobs.js';

const COLLECTION: Record<string, string> = {
  CronJob: '/apis/batch/v1/namespaces/{ns}/cronjobs',
  Deployment: '/apis/apps/v1/namespaces/{ns}/deployments',
  Service: '/api/v1/namespaces/{ns}/services',
};

/**
 * `toolforge jobs load` as jobs-api carries it out, for entries of a jobs.yaml: each entry read as jobs-api reads a
 * load, its CR written by jobs-api's ServiceAccount, its workloads by the tool with jobs-api's field manager (jobs-api
 * acts with the tool's credentials). One-off entries are not loaded, as in jobs-api.
 */
export async function loadThroughApi(cp: ControlPlane, tool: string, entries: readonly LoadEntry[]): Promise<string[]> {
  const jobsApi = new KubeApi(cp.kubeConfig('jobs-api'));
  const asTool = new KubeApi(cp.kubeConfig(tool));
  const loaded: string[] = [];
  for (const entry of entries) {
    const job = jobFromLoadEntry(entry, tool);
    if (job.job_type === 'one-off') continue;
    const stored: StoredJob = job;
    const kind = storageKindForJobType(stored.job_type);
    if (kind === undefined) continue;
    await jobsApi.request('POST', `/apis/${STORAGE_API_VERSION}/namespaces/tool-${tool}/${kind.plural}`, {
      body: crOf(stored),
    });
    for (const obj of workloadsOf(stored)) {
      const path = COLLECTION[String(obj['kind'])];
      if (path === undefined) throw new Error(`jobs-api does not create ${String(obj['kind'])} objects`);
      await asTool.request('POST', path.replace('{ns}', `tool-${tool}`), {
        body: obj,
        query: { fieldManager: 'jobs-api toolforge_weld' },
      });
    }
    loaded.push(entry.name);
  }
  return loaded;
}
