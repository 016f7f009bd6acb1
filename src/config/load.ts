import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import { configSchema } from './schema.js';
import type { Config } from './schema.js';

/** Environment variables read, and the config path each one sets. This module is the only reader of process.env. */
export const ENV_VARS: Readonly<Record<string, { path: string; type: 'string' | 'number' | 'list' }>> = {
  JOBS_STORAGE_LOG_LEVEL: { path: 'logLevel', type: 'string' },
  JOBS_STORAGE_KUBECONFIG: { path: 'kubeconfig', type: 'string' },
  KUBERNETES_SERVICE_HOST: { path: 'inCluster.host', type: 'string' },
  KUBERNETES_SERVICE_PORT: { path: 'inCluster.port', type: 'string' },
  JOBS_STORAGE_WEBHOOK_PORT: { path: 'webhook.port', type: 'number' },
  JOBS_STORAGE_WEBHOOK_HOST: { path: 'webhook.host', type: 'string' },
  JOBS_STORAGE_TLS_CERT_FILE: { path: 'webhook.certFile', type: 'string' },
  JOBS_STORAGE_TLS_KEY_FILE: { path: 'webhook.keyFile', type: 'string' },
  JOBS_STORAGE_PHASE_NAMESPACE: { path: 'phase.namespace', type: 'string' },
  JOBS_STORAGE_PHASE_CONFIGMAP: { path: 'phase.name', type: 'string' },
  JOBS_STORAGE_STORAGE_WRITERS: { path: 'identities.storageWriters', type: 'list' },
  JOBS_STORAGE_BREAK_GLASS_GROUPS: { path: 'identities.breakGlassGroups', type: 'list' },
  JOBS_STORAGE_SYNC_PORT: { path: 'sync.port', type: 'number' },
  JOBS_STORAGE_SYNC_IDENTITY: { path: 'sync.identity', type: 'string' },
  JOBS_STORAGE_ADMIN_AUDIENCE: { path: 'admin.audience', type: 'string' },
  JOBS_STORAGE_ADMIN_SUBJECTS: { path: 'admin.allowedSubjects', type: 'list' },
  JOBS_STORAGE_MIGRATION_DEADLINE: { path: 'migration.deadline', type: 'string' },
  JOBS_STORAGE_MIGRATION_ANNOUNCEMENT_URL: { path: 'migration.announcementUrl', type: 'string' },
};

export const CONFIG_FILE_ENV = 'JOBS_STORAGE_CONFIG';

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1] as string] = value;
}

function mergeDeep(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    const bothObjects =
      typeof prev === 'object' &&
      prev !== null &&
      !Array.isArray(prev) &&
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value);
    out[key] = bothObjects ? mergeDeep(prev as Tree, value as Tree) : value;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function envLayer(env: NodeJS.ProcessEnv, issues: string[]): Tree {
  const tree: Tree = {};
  for (const [name, { path, type }] of Object.entries(ENV_VARS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (type === 'number') {
      const n = Number(raw);
      if (!Number.isInteger(n)) issues.push(`${name}: must be an integer, got '${raw}'`);
      else setPath(tree, path, n);
    } else if (type === 'list') {
      setPath(
        tree,
        path,
        raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
    } else {
      setPath(tree, path, raw);
    }
  }
  return tree;
}

function fileLayer(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read: ${errorMessage(err)}`], { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${file}: not valid YAML: ${errorMessage(err)}`], { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError([`${file}: must be a YAML mapping`]);
  return doc as Tree;
}

export interface LoadConfigOptions {
  /** A YAML config file; else $JOBS_STORAGE_CONFIG, else none. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags; the highest precedence. */
  overrides?: Tree;
}

/**
 * Reads the configuration once: schema defaults ← config file ← JOBS_STORAGE_* environment ← flags.
 * Every problem is reported together; the result is frozen.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const issues: string[] = [];
  const file = options.file ?? env[CONFIG_FILE_ENV];
  let tree: Tree = file ? fileLayer(file) : {};
  tree = mergeDeep(tree, envLayer(env, issues));
  if (!tree['kubeconfig'] && env['KUBECONFIG']) tree['kubeconfig'] = env['KUBECONFIG'];
  tree = mergeDeep(tree, options.overrides ?? {});
  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const where = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      issues.push(`${where}: ${issue.message}`);
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return deepFreeze(parsed.data);
}
