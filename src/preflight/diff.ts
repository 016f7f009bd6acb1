import { isObject, type KObject } from '../runtime/object.js';
import { canonicalPath, classifyDifference, type DifferenceClass } from './classify.js';
import { commandParts } from './command-parts.js';
import { canonicalQuantity, normalizeWorkload, comparedKindOf, type ComparedKind } from './normalize.js';

/** One field where the live object and the object jobs-api would render differ. */
export interface Difference {
  /** `Kind/name` of the object the field belongs to. */
  object: string;
  /** The field, as a path into the object; `(object)` when the whole object exists on one side only. */
  field: string;
  /** The live value; undefined when the field is not set. */
  live: unknown;
  rendered: unknown;
  class: DifferenceClass;
  /** One line in Toolforge terms. */
  reason: string;
  /** jobs-api cannot update this field in place (immutable): it deletes and recreates the object. */
  recreate?: true;
}

export type Verdict = 'same' | 'cosmetic' | 'functional';

export interface WorkloadDiff {
  verdict: Verdict;
  differences: Difference[];
  /** jobs-api would delete and recreate an object (an immutable field changes). */
  recreate: boolean;
}

/** Lists of objects keyed by their `name` rather than their position. */
const NAMED_LISTS = new Set(['env', 'volumes', 'volumeMounts']);
/** String maps whose keys are shown in brackets, and compared key by key also when one side has no map at all. */
const STRING_MAPS = new Set(['labels', 'annotations', 'matchLabels', 'selector', 'nodeSelector']);
/**
 * Maps compared key by key also when one side has none, so each quantity is its own difference; and metadata, so a
 * hand-written template without any (kubectl's) differs label by label, each classified, not as one unknown field.
 */
const DESCEND = new Set([...STRING_MAPS, 'resources', 'requests', 'limits', 'metadata']);
const QUANTITY = /\.resources\.(?:requests|limits)\.(cpu|memory)$/;
const CONTAINER = /\.containers\[\d+\]$/;

interface RawDifference {
  path: string;
  live: unknown;
  rendered: unknown;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

function keyPath(path: string, parent: string, key: string): string {
  const selectorPart = parent === 'selector' && (key === 'matchLabels' || key === 'matchExpressions');
  const bracket = (STRING_MAPS.has(parent) && !selectorPart) || !IDENTIFIER.test(key);
  if (bracket) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function byName(list: readonly unknown[]): Map<string, unknown> | undefined {
  const map = new Map<string, unknown>();
  for (const item of list) {
    if (!isObject(item) || typeof item['name'] !== 'string' || map.has(item['name'])) return undefined;
    map.set(item['name'], item);
  }
  return map;
}

function quantityText(value: unknown, unit: 'cpu' | 'memory'): unknown {
  return typeof value === 'string' || typeof value === 'number' ? canonicalQuantity(String(value), unit) : value;
}

/** A missing side read as empty where comparing entry by entry says more than "the whole map is new". */
function emptyFor(key: string, other: unknown): unknown {
  if (isObject(other) && DESCEND.has(key)) return {};
  if (Array.isArray(other) && NAMED_LISTS.has(key) && byName(other)) return [];
  return undefined;
}

/**
 * Compares two values at `path` (whose last key is `key`; '' for a list element) and records each leaf that
 * differs. Maps and lists of objects are walked; scalars and lists of scalars are leaves.
 */
function walk(liveValue: unknown, renderedValue: unknown, path: string, key: string, out: RawDifference[]): void {
  if (liveValue === renderedValue) return;
  const live = liveValue ?? emptyFor(key, renderedValue);
  const rendered = renderedValue ?? emptyFor(key, liveValue);
  if ((key === 'cpu' || key === 'memory') && QUANTITY.test(path)) walkQuantity(live, rendered, path, key, out);
  else if (isObject(live) && isObject(rendered)) walkObject(live, rendered, path, key, out);
  else if (Array.isArray(live) && Array.isArray(rendered) && [...live, ...rendered].every(isObject))
    walkList(live, rendered, path, key, out);
  else if (!deepEqual(live, rendered)) out.push({ path, live, rendered });
}

function walkQuantity(live: unknown, rendered: unknown, path: string, unit: 'cpu' | 'memory', out: RawDifference[]) {
  const l = quantityText(live, unit);
  const r = quantityText(rendered, unit);
  if (l !== r) out.push({ path, live: l, rendered: r });
}

function walkObject(live: KObject, rendered: KObject, path: string, key: string, out: RawDifference[]): void {
  const container = key === '' && path.endsWith(']') && CONTAINER.test(path);
  if (container) walkCommand(live, rendered, path, out);
  for (const k in live) {
    if (container && (k === 'command' || k === 'args')) continue;
    walk(live[k], rendered[k], keyPath(path, key, k), k, out);
  }
  for (const k in rendered) {
    if (k in live || (container && (k === 'command' || k === 'args'))) continue;
    walk(undefined, rendered[k], keyPath(path, key, k), k, out);
  }
}

/** Lists of named objects (env, volumes, mounts) entry by name, other lists of objects by position. */
function walkList(
  live: readonly unknown[],
  rendered: readonly unknown[],
  path: string,
  key: string,
  out: RawDifference[],
): void {
  const l = NAMED_LISTS.has(key) ? byName(live) : undefined;
  const r = l === undefined ? undefined : byName(rendered);
  if (l && r) {
    for (const name of new Set([...l.keys(), ...r.keys()])) walk(l.get(name), r.get(name), `${path}[${name}]`, '', out);
    return;
  }
  for (let i = 0; i < Math.max(live.length, rendered.length); i++) walk(live[i], rendered[i], `${path}[${i}]`, '', out);
}

/**
 * The command and args of a container, compared as what runs: the log files (resolved against the working
 * directory) separately from the command itself, so "stdout moves" and "the command changes" are each one line.
 */
function walkCommand(live: KObject, rendered: KObject, path: string, out: RawDifference[]): void {
  const same = deepEqual(live['command'], rendered['command']) && deepEqual(live['args'], rendered['args']);
  if (same && deepEqual(live['workingDir'], rendered['workingDir'])) return;
  const l = commandParts(live['command'], live['args'], live['workingDir']);
  const r = commandParts(rendered['command'], rendered['args'], rendered['workingDir']);
  if (l.stdout !== r.stdout) out.push({ path: `${path}.command (stdout)`, live: l.stdout, rendered: r.stdout });
  if (l.stderr !== r.stderr) out.push({ path: `${path}.command (stderr)`, live: l.stderr, rendered: r.stderr });
  if (same) return;
  if (l.cmd === r.cmd && l.form === r.form) {
    // the same command: the log lines above say it all, or only the spelling of the log paths differs
    if (l.stdout === r.stdout && l.stderr === r.stderr)
      out.push({ path: `${path}.command (paths)`, live: live['command'], rendered: rendered['command'] });
    return;
  }
  const full = (c: KObject): unknown => {
    const args = c['args'];
    return Array.isArray(args) && args.length > 0 ? { command: c['command'], args } : c['command'];
  };
  out.push({ path: `${path}.command`, live: full(live), rendered: full(rendered) });
}

function nameOf(obj: unknown): string {
  const md = isObject(obj) ? obj['metadata'] : undefined;
  return isObject(md) && typeof md['name'] === 'string' ? md['name'] : '?';
}

function verdictOf(differences: readonly Difference[]): Verdict {
  if (differences.length === 0) return 'same';
  return differences.some((d) => d.class === 'functional') ? 'functional' : 'cosmetic';
}

/** A difference with the classifier rule that judged it and its kind-independent path (`container.image`). */
export interface ClassifiedDifference extends Difference {
  /** The rule of the classifier table that matched (`unknown` when none did). */
  rule: string;
  /** The path the rules match, e.g. `container.resources.requests.cpu`. */
  canonical: string;
  kind: ComparedKind;
}

/**
 * Field by field: the live objects of one job (CronJob, or Deployment and its Service) against the objects jobs-api
 * would render for it, each difference with the classifier's rule. Objects are matched by kind; one that exists on
 * one side only is one difference. Pure. `diffWorkloads` is this without the rules; migrate reads the rules.
 */
export function classifiedDifferences(live: readonly unknown[], rendered: readonly unknown[]): ClassifiedDifference[] {
  const differences: ClassifiedDifference[] = [];
  const kinds = new Set<ComparedKind>();
  for (const o of [...live, ...rendered]) {
    const kind = comparedKindOf(o);
    if (kind !== undefined) kinds.add(kind);
  }
  for (const kind of kinds) {
    const l = live.find((o) => comparedKindOf(o) === kind);
    const r = rendered.find((o) => comparedKindOf(o) === kind);
    const object = `${kind}/${nameOf(l ?? r)}`;
    const raw: RawDifference[] = [];
    if (l === undefined || r === undefined)
      raw.push({ path: '(object)', live: l && 'exists', rendered: r && 'exists' });
    else walk(normalizeWorkload(l), normalizeWorkload(r), '', '', raw);
    for (const d of raw) {
      const c = classifyDifference(kind, d.path, d.live, d.rendered);
      differences.push({
        object,
        field: d.path,
        live: d.live,
        rendered: d.rendered,
        class: c.class,
        reason: c.reason,
        ...(c.recreate ? { recreate: true as const } : {}),
        rule: c.rule,
        canonical: canonicalPath(kind, d.path),
        kind,
      });
    }
  }
  return differences;
}

/**
 * Field by field: the live objects of one job (CronJob, or Deployment and its Service) against the objects jobs-api
 * would render for it. Objects are matched by kind; one that exists on one side only is one difference. Pure.
 */
export function diffWorkloads(live: readonly unknown[], rendered: readonly unknown[]): WorkloadDiff {
  const differences: Difference[] = classifiedDifferences(live, rendered).map(
    ({ rule: _rule, canonical: _canonical, kind: _kind, ...d }) => d,
  );
  return {
    verdict: verdictOf(differences),
    differences,
    recreate: differences.some((d) => d.recreate === true),
  };
}
