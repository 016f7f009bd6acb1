/**
 * Toolforge tenancy: every tool owns one namespace, its name the configured prefix followed by the tool name. The
 * one rule for both directions, used by the runtime and storage adapters, the sync and the webhook.
 */

/** The prefix Toolforge gives tool namespaces (`toolNamespacePrefix` in the configuration). */
export const DEFAULT_TOOL_NAMESPACE_PREFIX = 'tool-';

export interface ToolOfNamespaceOptions {
  /**
   * When the namespace lacks the prefix, read it as jobs-api does: everything after the first dash
   * (`"".join(namespace.split("-", 1)[1:])`), so `tool-x` and `foo-x` both belong to `x`. Only readers of objects
   * that jobs-api wrote take this fallback; deciding whether a namespace is a tool's never does.
   */
  jobsApiFallback?: boolean;
}

/** Kubernetes' rule for namespace names: a DNS-1123 label (RFC 1123), at most 63 characters. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_NAMESPACE_LENGTH = 63;

/**
 * Whether `namespace` can be a tool's: a valid namespace name (lowercase alphanumerics and '-', starting and ending
 * alphanumeric, at most 63 characters) made of the prefix and a non-empty tool name. What the apiserver sends always
 * passes the name rule; a review that fails it was made up, and whatever it names is nobody's tool.
 */
export function isToolNamespace(namespace: string | undefined, prefix = DEFAULT_TOOL_NAMESPACE_PREFIX): boolean {
  return (
    namespace !== undefined &&
    namespace.length <= MAX_NAMESPACE_LENGTH &&
    namespace.length > prefix.length &&
    namespace.startsWith(prefix) &&
    DNS1123_LABEL.test(namespace)
  );
}

/** The namespace of a tool. */
export function namespaceOfTool(tool: string, prefix = DEFAULT_TOOL_NAMESPACE_PREFIX): string {
  return `${prefix}${tool}`;
}

/** The tool of a namespace, or undefined for a namespace that is not a tool's (see `jobsApiFallback`). */
export function toolOfNamespace(
  namespace: string | undefined,
  prefix = DEFAULT_TOOL_NAMESPACE_PREFIX,
  options: ToolOfNamespaceOptions = {},
): string | undefined {
  if (namespace === undefined) return undefined;
  if (namespace.startsWith(prefix) && namespace.length > prefix.length) return namespace.slice(prefix.length);
  if (!options.jobsApiFallback) return undefined;
  const dash = namespace.indexOf('-');
  return dash < 0 || dash === namespace.length - 1 ? undefined : namespace.slice(dash + 1);
}
