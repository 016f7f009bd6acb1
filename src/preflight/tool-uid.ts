import { formatProblem, ok, problem, type Result } from '../errors.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isNotFound } from '../k8s/errors.js';
import { objectPath, type ApiResource } from '../k8s/paths.js';
import { isObject } from '../runtime/object.js';

/**
 * Where restore learns a tool's uid, which jobs-api writes into every pod as runAsUser, runAsGroup and fsGroup (one
 * number: a tool account's group has its uid). jobs-api reads it from passwd (`<project>.<tool>`), which this
 * process cannot. maintain-kubeusers, which creates each tool's namespace, also creates in it a Kyverno `Policy`
 * named `toolforge-kyverno-pod-policy` from its template `kyverno_pod_policy.yaml.tpl`, with the tool's uid
 * substituted for `${TOOL_UID}`: the pod policy that holds the tool's pods to that uid. It outlives the tool's
 * workloads, so it is the cluster's record of the uid when every workload is gone.
 */

export const KYVERNO_POLICIES: ApiResource = { group: 'kyverno.io', version: 'v1', plural: 'policies' };
export const TOOL_POD_POLICY_NAME = 'toolforge-kyverno-pod-policy';

/** A uid and where it came from, in words (`--uid`, `Kyverno Policy tool-a/…`, `the tool's remaining workloads`). */
export interface UidCandidate {
  uid: number;
  source: string;
}

/** The key of a pod field that carries the tool's uid, bare or inside a Kyverno anchor such as `=(runAsUser)`. */
const UID_KEY = /^(?:[=+^<]\()?(?:runAsUser|runAsGroup|fsGroup)\)?$/;

function uidValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value)) return Number(value);
  return undefined;
}

function collectUids(node: unknown, into: Set<number>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectUids(item, into);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    const uid = UID_KEY.test(key) ? uidValue(value) : undefined;
    if (uid !== undefined) into.add(uid);
    else collectUids(value, into);
  }
}

/**
 * The uid a tool's pod policy holds its pods to: the one number its rules give for runAsUser, runAsGroup or fsGroup
 * (whether they validate or mutate, anchored or not). No such number, or several, is no answer.
 */
export function uidFromPodPolicy(policy: unknown): Result<number> {
  const uids = new Set<number>();
  collectUids(isObject(policy) ? policy['spec'] : undefined, uids);
  const [first, ...rest] = [...uids].sort((a, b) => a - b);
  if (first === undefined) return problem('', 'it sets no runAsUser, runAsGroup or fsGroup');
  if (rest.length > 0) return problem('', `it names several ids (${[first, ...rest].join(', ')})`);
  return ok(first);
}

/**
 * Reads the tool's pod policy. `candidate` when it names the uid; `note` says why it does not (absent: no policy,
 * or Kyverno not installed; unreadable; no single uid in it).
 */
export async function readPodPolicyUid(
  api: Pick<KubeApi, 'request'>,
  namespace: string,
): Promise<{ candidate?: UidCandidate; note: string }> {
  const where = `Kyverno Policy ${namespace}/${TOOL_POD_POLICY_NAME}`;
  let policy: unknown;
  try {
    policy = await api.request<unknown>('GET', objectPath(KYVERNO_POLICIES, namespace, TOOL_POD_POLICY_NAME));
  } catch (err) {
    if (isNotFound(err)) return { note: `no ${where}` };
    return { note: `the ${where} could not be read: ${describeApiError(err).message}` };
  }
  const found = uidFromPodPolicy(policy);
  if (!found.ok) return { note: `the ${where} names no single uid: ${formatProblem(found.problem)}` };
  return { candidate: { uid: found.value, source: `the ${where}` }, note: `the ${where}` };
}

export interface ChosenUid {
  uid?: number;
  source?: string;
  /** Set when the candidates name different uids: each source with its uid, and which one wins. */
  disagreement?: string;
}

/** The first candidate wins (callers list them by precedence: --uid, the pod policy, the remaining workloads). */
export function chooseToolUid(candidates: readonly UidCandidate[]): ChosenUid {
  const [chosen] = candidates;
  if (chosen === undefined) return {};
  const distinct = new Set(candidates.map((c) => c.uid));
  if (distinct.size === 1) return { uid: chosen.uid, source: chosen.source };
  const all = candidates.map((c) => `${c.source} says ${c.uid}`).join(', ');
  return { uid: chosen.uid, source: chosen.source, disagreement: `${all}; using ${chosen.uid} from ${chosen.source}` };
}
