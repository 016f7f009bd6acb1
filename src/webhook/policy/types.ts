import type { Config } from '../../config/schema.js';
import type { Phase } from '../../phase/behaviour.js';
import type { Verdict } from '../review.js';

export type WebhookName = 'protect-storage' | 'record-direct-writes';

/** Everything a decision depends on besides the request; plain data so policies stay pure. */
export interface PolicyContext {
  identities: Config['identities'];
  toolNamespacePrefix: string;
  phase: Phase;
}

/**
 * Who made a request, as far as admission can tell (design §4). `direct` is the rest: kubectl, scripts, other clients.
 * `storage-writer` and `not-a-writer` only occur for job CRs; `out-of-scope` is a request the webhook does not judge.
 */
export type WriteSource =
  | 'out-of-scope'
  | 'storage-writer'
  | 'not-a-writer'
  | 'break-glass'
  | 'controller'
  | 'jobs-api'
  | 'known-client'
  | 'dry-run'
  | 'direct';

/** A counter increment the handler applies once the response is known; never part of a dry run. */
export type Recording =
  | { metric: 'directWrites'; labels: { tool_name: string; kind: string; operation: string }; key: string }
  | { metric: 'breakGlass'; labels: { resource: string; operation: string } }
  | { metric: 'storageWritesDenied'; labels: { operation: string } };

export interface Decision {
  verdict: Verdict;
  source: WriteSource;
  /** Log level of the decision line: debug for routine allows, info for direct writes and denials, warn for break-glass. */
  level: 'debug' | 'info' | 'warn';
  recording?: Recording;
}
