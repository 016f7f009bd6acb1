import type { Config } from '../config/schema.js';
import type { SyncEvents } from './events/emitter.js';
import type { KubeApi } from '../k8s/api.js';
import type { PhaseView } from '../phase/source.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import type { StorageCodec } from '../storage/codec.js';

/** What the sync needs of the phase: it neither reconciles nor writes before the phase is known. */
export type SyncPhase = Pick<PhaseView, 'current' | 'whenKnown' | 'known' | 'onChange'>;

export interface SyncDeps {
  config: Config;
  logger: Logger;
  metrics: SyncMetrics;
  api: KubeApi;
  codec: StorageCodec;
  phase: SyncPhase;
  /** This replica's name in the Lease (the pod name in production). */
  identity: string;
  /** jobs-api's deployment settings, to read workloads and fill a job's defaults (runtime/settings). */
  settings: RuntimeSettings;
  /** Campaign for the Lease before writing (default); false acts as the only writer (one-shot import). */
  elect?: boolean;
  /** Never write, only report (the `report` command and `import --dry-run`). */
  readOnly?: boolean;
  /** Backfills in flight at once (default BACKFILL_IN_FLIGHT; the one-shot import writes with more). */
  backfillInFlight?: number;
  /**
   * How long after a watch event its tool is reconciled (default EVENT_DELAY_MS; IMPORT_EVENT_DELAY_MS for import).
   */
  eventDelayMs?: number;
  /**
   * false: the CRs are listed once and not watched afterwards (the one-shot import, docs/adr/0005); a CR this sync
   * writes counts as seen when the API server answers the POST. Default true: the daemon watches them.
   */
  watchCrs?: boolean;
  /**
   * The Events on workloads not managed through the jobs API (sync/events/): each pass hands them its tools' inventories,
   * and they write only while this replica leads. The daemon has them; the one-shot commands do not.
   */
  events?: SyncEvents;
  now?: () => number;
  /** The longest wait between passes (default 500 ms); tests lengthen it to show what events alone do. */
  intervalMs?: number;
}

/** A pass this often at the latest, for whatever no event announces (a failed backfill's retry, a grace's end). */
export const LOOP_INTERVAL_MS = 500;
/** A watch event reconciles its tool after this long: a burst of events (a relist, a bulk create) is one pass. */
export const EVENT_DELAY_MS = 5;
/**
 * The one-shot import's: its own CR writes are most of the watch events it hears, so a tool's five CRs make one pass,
 * not five (each pass plans its tools and publishes their gauges, which an import never shows).
 */
export const IMPORT_EVENT_DELAY_MS = 100;
