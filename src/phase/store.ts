import type { Config } from '../config/schema.js';
import type { KubeApi } from '../k8s/api.js';
import { isNotFound } from '../k8s/errors.js';
import { CONFIGMAPS, collectionPath, objectPath } from '../k8s/paths.js';
import { UsageError } from '../errors.js';
import { PHASES, isPhase } from './behaviour.js';
import type { Phase } from './behaviour.js';

/** The phase ConfigMap's annotation holding the last changes (JSON array of `PhaseChange`). */
export const PHASE_HISTORY_ANNOTATION = 'jobs-storage.toolforge.org/phase-history';
const HISTORY_LENGTH = 20;

export interface PhaseChange {
  phase: Phase;
  previous: Phase | null;
  at: string;
  by: string;
  reason?: string;
}

/** The phase ConfigMap as this project reads and writes it. */
export interface PhaseConfigMap {
  apiVersion?: 'v1';
  kind?: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
}

/** Where the phase lives: `config.phase.{namespace,name,key}`. */
export type PhaseLocation = Pick<Config['phase'], 'namespace' | 'name' | 'key'>;

export interface PhaseState {
  phase: Phase;
  /** False when the ConfigMap (or its key) does not exist and the configured initial phase applies. */
  stored: boolean;
  /** A stored value that is not a phase: webhook and sync keep their last known phase and report it stale. */
  invalid?: string;
  history: PhaseChange[];
}

/** The collection the phase ConfigMap lives in (its namespace's ConfigMaps). */
export function phaseCollectionPath(location: PhaseLocation): string {
  return collectionPath(CONFIGMAPS, location.namespace);
}

function phaseObjectPath(location: PhaseLocation): string {
  return objectPath(CONFIGMAPS, location.namespace, location.name);
}

function historyOf(cm: PhaseConfigMap | undefined): PhaseChange[] {
  try {
    const parsed: unknown = JSON.parse(cm?.metadata.annotations?.[PHASE_HISTORY_ANNOTATION] ?? '[]');
    return Array.isArray(parsed) ? (parsed as PhaseChange[]) : [];
  } catch {
    return [];
  }
}

async function read(api: KubeApi, config: Config): Promise<PhaseConfigMap | undefined> {
  try {
    return await api.request<PhaseConfigMap>('GET', phaseObjectPath(config.phase));
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
 * Writes the phase into its ConfigMap (creating it), appending the change to the history annotation with `by`, who
 * made it: the caller's API identity (the CLI asks a SelfSubjectReview), never the local OS user, who means nothing
 * to the cluster. The write carries the resourceVersion read, so two admins switching at once cannot lose a change
 * silently.
 */
export async function setPhase(
  api: KubeApi,
  config: Config,
  phase: string,
  o: { by: string; reason?: string; now?: Date },
): Promise<PhaseChange> {
  if (!isPhase(phase)) throw new UsageError(`unknown phase '${phase}': expected one of ${PHASES.join(', ')}`);
  const cm = await read(api, config);
  const previousValue = cm?.data?.[config.phase.key];
  const change: PhaseChange = {
    phase,
    previous: isPhase(previousValue) ? previousValue : null,
    at: (o.now ?? new Date()).toISOString(),
    by: o.by,
    ...(o.reason ? { reason: o.reason } : {}),
  };
  const history = [...historyOf(cm), change].slice(-HISTORY_LENGTH);
  const body: PhaseConfigMap = {
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
  if (cm) await api.request('PUT', phaseObjectPath(config.phase), { body });
  else await api.request('POST', phaseCollectionPath(config.phase), { body });
  return change;
}
