import type { KubeApi } from '../k8s/api.js';
import { groupByNamespace, listItems } from '../k8s/by-namespace.js';
import { collectionPath, SERVICES, type ApiResource } from '../k8s/paths.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from '../runtime/labels.js';
import { namespaceOfTool as toolNamespace, toolOfNamespace } from '../jobs/tenancy.js';
import { WORKLOAD_KINDS } from '../runtime/kinds.js';
import { STORAGE_GROUP, STORAGE_KINDS, STORAGE_VERSION, storageKindForJobType } from '../storage/kinds.js';
import {
  addToolTotals,
  preflightReport,
  preflightTool,
  toolUidFromObjects,
  totalsOf,
  type PreflightReport,
  type PreflightSettings,
  type ToolPreflight,
  type Totals,
} from './preflight.js';

/**
 * Preflight's reads: the job CRs of both kinds, the CronJobs, Deployments and jobs-framework Services, cluster-wide
 * (paginated LISTs, one tool compared as soon as every list has passed its namespace) or for named tools.
 */

/**
 * Objects per LIST page. Five lists are read at once, each with up to two pages in flight; small pages keep that
 * transient JSON small (the sync measured 100 best for peak RSS, `npm run bench -- preflight` agrees).
 */
export const DEFAULT_PAGE_SIZE = 100;

interface Listed {
  resource: ApiResource;
  /** CRs go to the storage side, everything else is a live object. */
  storage: boolean;
  labelSelector?: string;
}

const LISTED: readonly Listed[] = [
  ...STORAGE_KINDS.map((k) => ({
    resource: { group: STORAGE_GROUP, version: STORAGE_VERSION, plural: k.plural },
    storage: true,
  })),
  // The workloads of the stored job types: CronJobs and Deployments.
  ...WORKLOAD_KINDS.filter((k) => storageKindForJobType(k.jobType) !== undefined).map(({ group, version, plural }) => ({
    resource: { group, version, plural },
    storage: false,
  })),
  { resource: SERVICES, storage: false, labelSelector: `${LABELS.managedBy}=${MANAGED_BY_JOBS_FRAMEWORK}` },
];

export interface ReadOptions {
  /** Only these tools (namespaced lists); every tool namespace when empty or absent. */
  tools?: readonly string[];
  /** Objects per LIST page. */
  pageSize?: number;
}

/** A tool's objects as preflight and restore take them: its CRs and its live workloads and Services. */
export interface ToolObjects {
  crs: unknown[];
  objects: unknown[];
}

function listQuery(l: Listed, pageSize: number): { limit: number; labelSelector?: string } {
  return { limit: pageSize, ...(l.labelSelector ? { labelSelector: l.labelSelector } : {}) };
}

/** One tool's CRs and objects, from namespaced lists. */
export async function readTool(
  api: Pick<KubeApi, 'listPages'>,
  tool: string,
  options: { namespacePrefix?: string | undefined; pageSize?: number },
): Promise<ToolObjects> {
  const namespace = toolNamespace(tool, options.namespacePrefix);
  const into: ToolObjects = { crs: [], objects: [] };
  for (const l of LISTED) {
    const path = collectionPath(l.resource, namespace);
    for await (const page of api.listPages<unknown>(path, listQuery(l, options.pageSize ?? DEFAULT_PAGE_SIZE)))
      (l.storage ? into.crs : into.objects).push(...page.items);
  }
  return into;
}

/** The settings for one tool: the uid asked for old objects comes from any of the tool's pod templates. */
function toolSettings(settings: PreflightSettings, objects: readonly unknown[]): PreflightSettings {
  return { ...settings, toolUid: (tool) => toolUidFromObjects(objects) ?? settings.toolUid?.(tool) };
}

/** Preflight over the named tools, or over every tool namespace of the cluster, held as one report. Reads only. */
export async function readPreflight(
  api: Pick<KubeApi, 'listPages'>,
  settings: PreflightSettings,
  options: ReadOptions = {},
): Promise<PreflightReport> {
  const tools: ToolPreflight[] = [];
  await eachToolPreflight(api, settings, options, (tool) => tools.push(tool));
  return preflightReport(tools);
}

/**
 * Preflight tool by tool, each handed to `use` as soon as it is compared and then dropped, so that a cluster-wide
 * run holds one tool at a time: the named tools in the order given, or every tool namespace in the API server's
 * order (`tool-a-b` before `tool-a`). Returns the totals.
 */
export async function eachToolPreflight(
  api: Pick<KubeApi, 'listPages'>,
  settings: PreflightSettings,
  options: ReadOptions,
  use: (tool: ToolPreflight) => void,
): Promise<Totals> {
  const prefix = settings.runtime.toolNamespacePrefix;
  const totals = totalsOf();
  const compare = (tool: string, crs: unknown[], objects: unknown[]) => {
    const result = preflightTool(tool, crs, objects, toolSettings(settings, objects));
    addToolTotals(totals, result);
    use(result);
  };
  if (options.tools && options.tools.length > 0) {
    for (const tool of [...new Set(options.tools)]) {
      const { crs, objects } = await readTool(api, tool, {
        namespacePrefix: prefix,
        ...(options.pageSize ? { pageSize: options.pageSize } : {}),
      });
      compare(tool, crs, objects);
    }
    return totals;
  }
  await eachNamespace(api, options.pageSize ?? DEFAULT_PAGE_SIZE, (namespace, crs, objects) => {
    const tool = toolOfNamespace(namespace, prefix);
    if (tool !== undefined) compare(tool, crs, objects);
  });
  return totals;
}

/**
 * Merges the cluster-wide lists by namespace (`groupByNamespace`): only the pages in flight and one namespace's
 * objects are held. A list out of the API server's order is an error, never a partial tool.
 */
async function eachNamespace(
  api: Pick<KubeApi, 'listPages'>,
  pageSize: number,
  use: (namespace: string, crs: unknown[], objects: unknown[]) => void,
): Promise<void> {
  const lists = LISTED.map((l) => listItems(api, collectionPath(l.resource), listQuery(l, pageSize)));
  for await (const group of groupByNamespace(lists)) {
    const crs: unknown[] = [];
    const objects: unknown[] = [];
    LISTED.forEach((l, i) => (l.storage ? crs : objects).push(...(group.bySource[i] ?? [])));
    use(group.namespace, crs, objects);
  }
}
