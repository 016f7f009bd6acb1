/**
 * REST paths of the Kubernetes API, built in one place. Names and namespaces are URI-encoded: they come from objects
 * and user input, and a path segment must never be able to change which resource a request addresses.
 */

/** A resource type as the API serves it: core resources have the group `''`. */
export interface ApiResource {
  group: string;
  version: string;
  plural: string;
}

export const CONFIGMAPS: ApiResource = { group: '', version: 'v1', plural: 'configmaps' };
export const SERVICES: ApiResource = { group: '', version: 'v1', plural: 'services' };
export const LEASES: ApiResource = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

function groupVersionPath(r: ApiResource): string {
  return r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
}

/** The collection of a resource in one namespace, or across all namespaces when `namespace` is undefined. */
export function collectionPath(r: ApiResource, namespace?: string): string {
  const base = groupVersionPath(r);
  return namespace === undefined
    ? `${base}/${r.plural}`
    : `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
}

/** One object of a namespaced resource. */
export function objectPath(r: ApiResource, namespace: string, name: string): string {
  return `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
}
