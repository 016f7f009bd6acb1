import { AppError } from '../errors.js';
import type { KubeApi } from './api.js';

/**
 * Cluster-wide lists, read side by side and cut into one group per namespace, so that a command over every tool
 * (`migrate --all`, `preflight`) holds one namespace's objects at a time instead of every object of 4,000 tools.
 *
 * The API server returns a list in its storage key order, `<namespace>/<name>` (etcd and the watch cache alike), so
 * the objects of a namespace are consecutive in every list, and the lists can be merged like sorted files. A list
 * that breaks the order would silently split a namespace: it ends the walk with an error instead.
 */

export interface NamespaceGroup {
  namespace: string;
  /** The namespace's objects, one array per source, in the order the sources were given. */
  bySource: unknown[][];
}

function namespaceOf(obj: unknown): string {
  if (typeof obj !== 'object' || obj === null) return '';
  const metadata = (obj as { metadata?: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null) return '';
  const namespace = (metadata as { namespace?: unknown }).namespace;
  return typeof namespace === 'string' ? namespace : '';
}

/** The key prefix the API server sorts by: "a-b/" sorts before "a/", as '-' comes before '/'. */
export function namespaceKey(namespace: string): string {
  return `${namespace}/`;
}

/** The namespaces in the order `groupByNamespace` yields them. */
export function sortNamespaces(namespaces: Iterable<string>): string[] {
  return [...namespaces]
    .map(namespaceKey)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => k.slice(0, -1));
}

/** Merges lists sorted by namespace into per-namespace groups, in namespace key order. */
export async function* groupByNamespace(sources: readonly AsyncIterable<unknown>[]): AsyncGenerator<NamespaceGroup> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const heads: Array<{ key: string; value: unknown } | undefined> = sources.map(() => undefined);
  const advance = async (i: number): Promise<void> => {
    const next = await (iterators[i] as AsyncIterator<unknown>).next();
    heads[i] = next.done ? undefined : { key: namespaceKey(namespaceOf(next.value)), value: next.value };
  };
  try {
    await Promise.all(iterators.map((_, i) => advance(i)));
    let previous: string | undefined;
    for (;;) {
      let current: string | undefined;
      for (const head of heads)
        if (head !== undefined && (current === undefined || head.key < current)) current = head.key;
      if (current === undefined) return;
      if (previous !== undefined && current <= previous)
        throw new AppError(
          'ERR_K8S_API',
          `the API server listed namespace '${current.slice(0, -1)}' after '${previous.slice(0, -1)}': out of order (lists come in namespace order)`,
        );
      const bySource: unknown[][] = sources.map(() => []);
      for (let i = 0; i < heads.length; i++) {
        while (heads[i]?.key === current) {
          bySource[i]?.push(heads[i]?.value);
          await advance(i);
        }
      }
      previous = current;
      yield { namespace: current.slice(0, -1), bySource };
    }
  } finally {
    await Promise.all(iterators.map(async (it) => void (await it.return?.())));
  }
}

/** The items of a paginated list, one at a time: the pages are requested as the items are consumed. */
export async function* listItems(
  api: Pick<KubeApi, 'listPages'>,
  path: string,
  query: { limit: number; labelSelector?: string | undefined },
): AsyncGenerator<unknown> {
  for await (const page of api.listPages<unknown>(path, query)) yield* page.items;
}
