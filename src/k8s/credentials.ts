import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/schema.js';
import { ConfigError, errorMessage } from '../errors.js';

/** TLS material and headers for one request to the API server. */
export interface RequestCredentials {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** An array is sent as repeated header lines (impersonated groups). */
  headers: Record<string, string | string[]>;
  rejectUnauthorized?: boolean;
}

export interface KubeCredentials {
  server: string;
  /** Called before requests (at most once a minute): tokens from files are re-read, as they rotate. */
  resolve(): Promise<RequestCredentials>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-node's KubeConfig as credentials: every auth method it knows (exec plugins, OIDC, …). */
export function credentialsFromKubeConfig(kc: k8s.KubeConfig): KubeCredentials {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigError(['kubeconfig has no current cluster']);
  return {
    server: cluster.server,
    async resolve() {
      const opts: {
        ca?: Buffer | string;
        cert?: Buffer | string;
        key?: Buffer | string;
        headers?: Record<string, unknown>;
        rejectUnauthorized?: boolean;
      } = {};
      await kc.applyToHTTPSOptions(opts as never);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k] = v;
      return {
        headers,
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.cert ? { cert: opts.cert } : {}),
        ...(opts.key ? { key: opts.key } : {}),
        ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
      };
    },
  };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name: string; context: { cluster: string; user: string } }>;
  clusters?: Array<{ name: string; cluster: Record<string, unknown> }>;
  users?: Array<{ name: string; user: Record<string, unknown> }>;
}

function material(entry: Record<string, unknown>, dataKey: string, fileKey: string, base: string): Buffer | undefined {
  const data = entry[dataKey];
  if (typeof data === 'string') return Buffer.from(data, 'base64');
  const file = entry[fileKey];
  if (typeof file === 'string') return readFileSync(isAbsolute(file) ? file : join(base, file));
  return undefined;
}

/**
 * The common kubeconfig shapes — client certificates, a static token or a token file — read directly; anything
 * else (exec plugins, auth providers) returns undefined so the caller falls back to client-node. This keeps
 * client-node's 70 MB of generated API code out of the sync's memory (see the sync benchmark).
 */
export function credentialsFromKubeconfigFile(path: string, context?: string): KubeCredentials | undefined {
  const { cluster, user } = currentContextOf(path, context);
  return Object.keys(user).every((k) => LEAN_USER_KEYS.has(k))
    ? leanCredentials(cluster, user, dirname(path))
    : undefined;
}

/** The user entries the lean path reads itself; any other entry (exec, auth-provider…) is client-node's. */
const LEAN_USER_KEYS: ReadonlySet<string> = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
]);

function readKubeconfig(path: string): KubeconfigFile {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError([`kubeconfig ${path}: ${errorMessage(err)}`]);
  }
  if (doc === null || doc === undefined) throw new ConfigError([`kubeconfig ${path}: is empty`]);
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError([`kubeconfig ${path}: must be a YAML mapping (a kubeconfig file)`]);
  return doc as KubeconfigFile;
}

/** The context named `name`, or the first one when no name is given. */
function contextOf(doc: KubeconfigFile, name: string | undefined): { cluster: string; user: string } | undefined {
  return name ? doc.contexts?.find((c) => c.name === name)?.context : doc.contexts?.[0]?.context;
}

/**
 * The cluster and user of the kubeconfig's context `context` (kubectl's `--context`), else its current context, else
 * its first context.
 */
function currentContextOf(
  path: string,
  context?: string,
): {
  cluster: Record<string, unknown> & { server: string };
  user: Record<string, unknown>;
} {
  const doc = readKubeconfig(path);
  const current = context || doc['current-context'];
  const ctx = contextOf(doc, current);
  if (!ctx)
    throw new ConfigError([
      current ? `kubeconfig ${path}: context '${current}' not found` : `kubeconfig ${path}: has no context`,
    ]);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster['server'] !== 'string')
    throw new ConfigError([`kubeconfig ${path}: no cluster for the current context`]);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  return { cluster: cluster as Record<string, unknown> & { server: string }, user };
}

function leanCredentials(
  cluster: Record<string, unknown> & { server: string },
  user: Record<string, unknown>,
  base: string,
): KubeCredentials {
  const ca = material(cluster, 'certificate-authority-data', 'certificate-authority', base);
  const cert = material(user, 'client-certificate-data', 'client-certificate', base);
  const key = material(user, 'client-key-data', 'client-key', base);
  const tokenFileEntry = typeof user['tokenFile'] === 'string' ? user['tokenFile'] : undefined;
  const tokenFile = tokenFileEntry && !isAbsolute(tokenFileEntry) ? join(base, tokenFileEntry) : tokenFileEntry;
  const token = typeof user['token'] === 'string' ? user['token'] : undefined;
  const tls = {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
  };
  return {
    server: cluster.server,
    async resolve(): Promise<RequestCredentials> {
      const bearer = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : token;
      return { headers: bearer ? { authorization: `Bearer ${bearer}` } : {}, ...tls };
    },
  };
}

/** In-cluster credentials: the pod's ServiceAccount token (re-read: it is rotated) and the cluster CA. */
export function inClusterCredentials(host: string, port: string): KubeCredentials | undefined {
  if (!host || !existsSync(join(SA_DIR, 'token'))) return undefined;
  const ca = readFileSync(join(SA_DIR, 'ca.crt'));
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port || '443'}`;
  return {
    server,
    async resolve() {
      return { ca, headers: { authorization: `Bearer ${readFileSync(join(SA_DIR, 'token'), 'utf8').trim()}` } };
    },
  };
}

/**
 * Credentials for the configuration: the lean paths first, client-node for everything else. `context` picks a
 * kubeconfig context other than the current one (kubectl's `--context`); it needs a kubeconfig.
 */
export async function loadCredentials(
  config: Pick<Config, 'kubeconfig' | 'inCluster'>,
  options: { context?: string } = {},
): Promise<KubeCredentials> {
  const { context } = options;
  if (context && !config.kubeconfig)
    throw new ConfigError([`--context '${context}': needs a kubeconfig (--kubeconfig or KUBECONFIG)`]);
  const lean = config.kubeconfig
    ? credentialsFromKubeconfigFile(config.kubeconfig, context)
    : inClusterCredentials(config.inCluster.host, config.inCluster.port);
  if (lean) return lean;
  const { loadKubeConfig } = await import('./client.js');
  return credentialsFromKubeConfig(await loadKubeConfig(config, context));
}

/** Whom to act as (kubectl's `--as` / `--as-group`): the API server checks that the caller may impersonate them. */
export interface Impersonation {
  user: string;
  groups?: readonly string[];
}

/** The same credentials, with the impersonation headers on every request. */
export function withImpersonation(source: KubeCredentials, as: Impersonation): KubeCredentials {
  return {
    server: source.server,
    async resolve() {
      const c = await source.resolve();
      const headers: Record<string, string | string[]> = { ...c.headers, 'impersonate-user': as.user };
      // Repeated header lines, one per group: the API server reads every value of the header.
      if (as.groups?.length) headers['impersonate-group'] = [...as.groups];
      return { ...c, headers };
    },
  };
}
