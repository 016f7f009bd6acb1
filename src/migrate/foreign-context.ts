import type { JobType } from '../jobs/index.js';
import type { WorkloadKindName } from '../runtime/kinds.js';
import { isObject, type KObject } from '../runtime/object.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import type { LoadEntry, LoadKey } from './load-file.js';

/**
 * What reading a hand-written workload (migrate/foreign) keeps as it goes: the workload's pod parts (runtime/pod),
 * the entry built so far, and the notes on what the jobs API carries differently or not at all.
 */

export type ProblemCode =
  | 'several-containers'
  | 'init-containers'
  | 'custom-volume'
  | 'env-vars'
  | 'node-placement'
  | 'security-context'
  | 'pod-setting'
  | 'container-setting'
  | 'non-toolforge-image'
  | 'other-tool-image'
  | 'no-command'
  | 'shell-args'
  | 'working-dir'
  | 'concurrency-policy'
  | 'suspended'
  | 'time-zone'
  | 'restart-policy'
  | 'retry-capped'
  | 'timeout-one-off'
  | 'several-ports'
  | 'probe'
  | 'probe-timing'
  | 'resources'
  | 'name'
  | 'one-off'
  | 'schedule';

/** Something of a hand-written workload the jobs API carries differently or not at all, and what to do. */
export interface ForeignNote {
  code: ProblemCode;
  /** The workload field at fault, e.g. `spec.jobTemplate.spec.template.spec.volumes[0]`. */
  path: string;
  /** Why the jobs API cannot carry it as it is. */
  reason: string;
  /** What to do instead. */
  instead: string;
  attention: boolean;
}

export interface Ctx {
  readonly settings: RuntimeSettings;
  readonly kind: WorkloadKindName;
  readonly jobType: JobType;
  readonly tool: string;
  readonly name: string;
  readonly spec: KObject;
  /** The object holding the pod template and `backoffLimit` (runtime/pod's `podOwner`), and its path. */
  readonly owner: KObject;
  readonly ownerPath: string;
  /** The pod spec, and its path. */
  readonly pod: KObject;
  readonly podPath: string;
  readonly container: KObject;
  readonly containerPath: string;
  readonly problems: ForeignNote[];
  readonly entry: Partial<LoadEntry>;
}

export function obj(v: unknown): KObject {
  return isObject(v) ? v : {};
}

export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined;
}

/** Something the jobs API cannot carry: a person has to act. */
export function problem(ctx: Ctx, code: ProblemCode, path: string, reason: string, instead: string): void {
  ctx.problems.push({ code, path, reason, instead, attention: true });
}

/** A difference the entry handles itself: said, so nothing changes unnoticed. */
export function info(ctx: Ctx, code: ProblemCode, path: string, reason: string, instead: string): void {
  ctx.problems.push({ code, path, reason, instead, attention: false });
}

export function set<K extends LoadKey>(ctx: Ctx, key: K, value: LoadEntry[K]): void {
  (ctx.entry as Record<string, unknown>)[key] = value;
}
