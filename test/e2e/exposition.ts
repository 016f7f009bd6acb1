// Samples of the Prometheus exposition format as the e2e tests scrape them from kube-apiserver and the pods, and the
// apiserver's own view of the product's webhook calls (apiserver_admission_webhook_*).
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';

/** One sample line of the exposition format. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
  }
  return labels;
}

/** The samples of the families whose name `family` matches (every sample without one). */
export function parseExposition(text: string, family?: RegExp): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || (family !== undefined && !family.test(m[1] ?? ''))) continue;
    out.push({ name: m[1] ?? '', labels: parseLabels(m[2] ?? ''), value: Number(m[3]) });
  }
  return out;
}

export const keyOf = (s: Pick<Series, 'name' | 'labels'>): string =>
  `${s.name}{${Object.entries(s.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')}}`;

/** The series whose value grew from `before` to `after` (new series count from 0). */
export function grown(before: Series[], after: Series[]): Series[] {
  const old = new Map(before.map((s) => [keyOf(s), s.value]));
  return after.filter((s) => s.value > (old.get(keyOf(s)) ?? 0));
}

/** The same series with the growth from `before` as value (new series count from 0; shrunk ones are left out). */
export function delta(before: Series[], after: Series[]): Series[] {
  const old = new Map(before.map((s) => [keyOf(s), s.value]));
  return after.map((s) => ({ ...s, value: s.value - (old.get(keyOf(s)) ?? 0) })).filter((s) => s.value > 0);
}

/** kube-apiserver's admission-webhook families, as admin scrapes them. */
export async function scrapeAdmissionWebhooks(cp: ControlPlane): Promise<Series[]> {
  return parseExposition(await cp.kubectlOk('admin', ['get', '--raw', '/metrics']), /^apiserver_admission_webhook_/);
}

/** What the apiserver counted for the named webhooks between two scrapes. */
export interface AdmissionCalls {
  /** Calls timed by apiserver_admission_webhook_admission_duration_seconds. */
  calls: number;
  /** apiserver_admission_webhook_rejection_count with error_type other than no_error (a call that failed). */
  failed: number;
  /** apiserver_admission_webhook_fail_open_count. */
  failOpen: number;
  /** Calls the webhook answered with a denial (rejection_count, error_type no_error). */
  denied: number;
  /** Share of calls the apiserver saw finish within 5 ms and 25 ms (histogram buckets). */
  within5ms: number;
  within25ms: number;
  /** The 99th percentile, interpolated within the histogram's bucket as Prometheus's histogram_quantile does. */
  p99Seconds: number;
}

/** The apiserver's count of calls to the webhooks named `names` from `before` to `after`. */
export function admissionCalls(before: Series[], after: Series[], names: readonly string[]): AdmissionCalls {
  const ours = delta(before, after).filter((s) => names.includes(s.labels['name'] ?? ''));
  const sum = (pred: (s: Series) => boolean): number => ours.filter(pred).reduce((a, s) => a + s.value, 0);
  const buckets = new Map<number, number>();
  for (const s of ours) {
    if (s.name !== 'apiserver_admission_webhook_admission_duration_seconds_bucket') continue;
    const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  const calls = sum((s) => s.name === 'apiserver_admission_webhook_admission_duration_seconds_count');
  const at = (le: number): number => buckets.get(le) ?? 0;
  return {
    calls,
    failed: sum(
      (s) => s.name === 'apiserver_admission_webhook_rejection_count' && s.labels['error_type'] !== 'no_error',
    ),
    failOpen: sum((s) => s.name === 'apiserver_admission_webhook_fail_open_count'),
    denied: sum(
      (s) => s.name === 'apiserver_admission_webhook_rejection_count' && s.labels['error_type'] === 'no_error',
    ),
    within5ms: calls === 0 ? 0 : at(0.005) / calls,
    within25ms: calls === 0 ? 0 : at(0.025) / calls,
    p99Seconds: quantile(0.99, buckets),
  };
}

/** histogram_quantile over cumulative buckets (upper bound -> count): linear within the bucket the rank falls in. */
export function quantile(q: number, buckets: ReadonlyMap<number, number>): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) ?? 0;
    if (count >= rank) {
      // Like Prometheus: the +Inf bucket answers with the highest finite bound.
      if (bound === Infinity) return lowerBound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / Math.max(count - lowerCount, 1e-9);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}
