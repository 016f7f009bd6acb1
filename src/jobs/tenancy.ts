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
