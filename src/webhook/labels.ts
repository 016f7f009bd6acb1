import { DEFAULT_TOOL_NAMESPACE_PREFIX, isToolNamespace, namespaceOfTool } from '../jobs/tenancy.js';
import { WORKLOAD_KINDS } from '../runtime/kinds.js';
import { ALL_STORAGE_PLURALS } from '../storage/kinds.js';
import { OPERATIONS } from './review.js';

/**
 * Metric label values the webhook derives from reviews. A review's `kind`, `resource` and namespace are data the
 * caller chose, so each label takes its value from a closed set (or, for `tool_name`, a bounded one); anything else is
 * counted under `other`, never as a new series.
 */
export const OTHER = 'other';

/** The kinds a direct workload write can be of (a `deployments/scale` write counts as its Deployment). */
const WORKLOAD_KIND_SET: ReadonlySet<string> = new Set(WORKLOAD_KINDS.map((k) => k.kind));
const OPERATION_SET: ReadonlySet<string> = new Set(OPERATIONS);

/** Resources a break-glass write is counted by: every storage plural and the workloads, with their subresources. */
const RESOURCE_SET: ReadonlySet<string> = new Set([
  ...ALL_STORAGE_PLURALS.flatMap((p) => [p, `${p}/status`]),
  ...WORKLOAD_KINDS.flatMap(({ plural }) => [plural, `${plural}/status`]),
  'deployments/scale',
]);

export function kindLabel(kind: string): string {
  return WORKLOAD_KIND_SET.has(kind) ? kind : OTHER;
}

export function operationLabel(operation: string): string {
  return OPERATION_SET.has(operation) ? operation : OTHER;
}

export function resourceLabel(resource: string): string {
  return RESOURCE_SET.has(resource) ? resource : OTHER;
}

/**
 * `tool_name` values: a tool whose namespace is a valid tool namespace (`isToolNamespace`: a namespace name of at most
 * 63 characters, with the prefix) has its own series, so a value is never longer than 63 characters; the first `max`
 * distinct tools keep theirs for the life of the process, later ones count under `other`, and so does anything that
 * is not a valid tool namespace. Toolforge has about 4,000 tools, so the cap only ever bites on invented namespaces.
 */
export class ToolLabels {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly prefix = DEFAULT_TOOL_NAMESPACE_PREFIX,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`ToolLabels: max must be a positive integer, got ${max}`);
  }

  /** The label for the tool of namespace `${prefix}${tool}`. */
  label(tool: string): string {
    if (this.seen.has(tool)) return tool;
    if (this.seen.size >= this.max || !isToolNamespace(namespaceOfTool(tool, this.prefix), this.prefix)) return OTHER;
    this.seen.add(tool);
    return tool;
  }

  /** Distinct tools with their own series. */
  get size(): number {
    return this.seen.size;
  }
}
