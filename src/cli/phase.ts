import { userInfo } from 'node:os';
import { PHASES, isPhase } from '../config/phases.js';
import type { Phase } from '../config/phases.js';
import type { Config } from '../config/schema.js';
import type { KubeApi } from '../k8s/api.js';
import { isNotFound } from '../k8s/errors.js';
import { UsageError } from '../errors.js';

export const PHASE_HISTORY_ANNOTATION = 'jobs-storage.toolforge.org/phase-history';
const HISTORY_LENGTH = 20;

export interface PhaseChange {
  phase: Phase;
  previous: Phase | null;
  at: string;
  by: string;
  reason?: string;
}

interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
}

export interface PhaseState {
  phase: Phase;
  /** False when the ConfigMap (or its key) does not exist and the configured initial phase applies. */
  stored: boolean;
  /** A stored value that is not a phase: webhook and sync keep their last known phase and report it stale. */
  invalid?: string;
  history: PhaseChange[];
}

function path(config: Config): string {
  return `/api/v1/namespaces/${config.phase.namespace}/configmaps`;
}

function historyOf(cm: ConfigMap | undefined): PhaseChange[] {
  try {
    const parsed: unknown = JSON.parse(cm?.metadata.annotations?.[PHASE_HISTORY_ANNOTATION] ?? '[]');
    return Array.isArray(parsed) ? (parsed as PhaseChange[]) : [];
  } catch {
    return [];
  }
}

async function read(api: KubeApi, config: Config): Promise<ConfigMap | undefined> {
  try {
    return await api.request<ConfigMap>('GET', `${path(config)}/${config.phase.name}`);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function getPhase(api: KubeApi, config: Config): Promise<PhaseState> {
  const cm = await read(api, config);
  const value = cm?.data?.[config.phase.key];
  const state: PhaseState = {
    phase: isPhase(value) ? value : config.phase.initial,
    stored: isPhase(value),
    history: historyOf(cm),
  };
  if (value !== undefined && !isPhase(value)) state.invalid = value;
  return state;
}

/**
 * Writes the phase into its ConfigMap (creating it), appending the change to the history annotation. The write
 * carries the resourceVersion read, so two admins switching at once cannot lose a change silently.
 */
export async function setPhase(
  api: KubeApi,
  config: Config,
  phase: string,
  o: { by?: string; reason?: string; now?: Date } = {},
): Promise<PhaseChange> {
  if (!isPhase(phase)) throw new UsageError(`unknown phase '${phase}': expected one of ${PHASES.join(', ')}`);
  const cm = await read(api, config);
  const previousValue = cm?.data?.[config.phase.key];
  const change: PhaseChange = {
    phase,
    previous: isPhase(previousValue) ? previousValue : null,
    at: (o.now ?? new Date()).toISOString(),
    by: o.by ?? userInfo().username,
    ...(o.reason ? { reason: o.reason } : {}),
  };
  const history = [...historyOf(cm), change].slice(-HISTORY_LENGTH);
  const body: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: config.phase.name,
      namespace: config.phase.namespace,
      ...(cm?.metadata.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
      annotations: { ...cm?.metadata.annotations, [PHASE_HISTORY_ANNOTATION]: JSON.stringify(history) },
    },
    data: { ...cm?.data, [config.phase.key]: phase },
  };
  if (cm) await api.request('PUT', `${path(config)}/${config.phase.name}`, { body });
  else await api.request('POST', path(config), { body });
  return change;
}
