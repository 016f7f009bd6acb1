import type { Phase } from '../phase/behaviour.js';
import type { Config } from '../config/schema.js';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { ToolLabels, kindLabel, operationLabel, resourceLabel } from './labels.js';
import { objectName } from './policy/evidence.js';
import { decideProtectStorage } from './policy/protect-storage.js';
import { decideRecordDirectWrite } from './policy/record-direct-writes.js';
import type { Decision, PolicyContext, Recording, WebhookName } from './policy/types.js';
import { RecentKeys } from './recent-keys.js';
import { buildAdmissionResponse, parseAdmissionReview, readableUid, undecidedAdmissionResponse } from './review.js';
import type { AdmissionRequest } from './review.js';

export const WEBHOOKS: Readonly<Record<WebhookName, (request: AdmissionRequest, ctx: PolicyContext) => Decision>> = {
  'protect-storage': decideProtectStorage,
  'record-direct-writes': decideRecordDirectWrite,
};

/** A retried admission call for the same write arrives within the webhook timeout plus the apiserver's backoff. */
const REPEAT_WINDOW_MS = 30_000;
const MAX_REMEMBERED_WRITES = 50_000;
const DEFAULT_MAX_TOOL_SERIES = 10_000;

export interface AdmissionDeps {
  config: Pick<Config, 'identities' | 'toolNamespacePrefix'> & {
    webhook?: Pick<Config['webhook'], 'maxToolSeries'>;
  };
  logger: Logger;
  metrics: WebhookMetrics;
  /** The phase in force, read on every review so a change applies at once. */
  phase: () => Phase;
  /** Milliseconds clock for the repeat window; tests pass their own. */
  now?: () => number;
}

/** An HTTP answer: status and JSON text. */
export interface Answer {
  status: number;
  body: string;
}

export type AdmissionHandler = (webhook: WebhookName, body: string) => Answer;

type Outcome = 'allow' | 'deny' | 'error';

/** An error answer: a JSON body with the message, as the apiserver logs it. */
export function errorAnswer(status: number, message: string): Answer {
  return { status, body: JSON.stringify({ message }) };
}

/**
 * How each webhook answers a review it could not decide: protect-storage fails closed (the VAP holds the same rule
 * in-process), record-direct-writes fails open (counting must never block a tool).
 */
export const ALLOWED_WHEN_UNDECIDED: Readonly<Record<WebhookName, boolean>> = {
  'protect-storage': false,
  'record-direct-writes': true,
};

function undecided(webhook: WebhookName, uid: string, code: 400 | 500, message: string): Answer {
  return {
    status: 200,
    body: JSON.stringify(undecidedAdmissionResponse(uid, ALLOWED_WHEN_UNDECIDED[webhook], code, message)),
  };
}

/**
 * The longest review value a log line carries whole: Kubernetes names are at most 253 characters, so only a made-up
 * review (a 16 KiB namespace) is cut.
 */
const MAX_LOGGED_VALUE = 256;

function clip(value: string | undefined): string | undefined {
  return value === undefined || value.length <= MAX_LOGGED_VALUE ? value : `${value.slice(0, MAX_LOGGED_VALUE)}…`;
}

function decisionOf(decision: Decision): Outcome {
  return decision.verdict.allowed ? 'allow' : 'deny';
}

/**
 * Decides one AdmissionReview body for `webhook` and applies what the decision records. Never throws. Every review
 * whose `request.uid` is readable is answered 200 with an AdmissionReview echoing it: a malformed one with
 * `status.code` 400, an unexpected failure with 500 (see `ALLOWED_WHEN_UNDECIDED`), both counted as decision
 * `error`. Only a body without a readable uid (not JSON, no request) gets an HTTP 400 with a JSON message.
 * Each recorded direct write, denial and break-glass write gets an info (break-glass: warn) line; a repeated call for
 * a write already recorded logs at debug, like routine allows.
 */
export function createAdmissionHandler(deps: AdmissionDeps): AdmissionHandler {
  const { metrics, logger } = deps;
  // The decision line's fields are the review's identifiers, never a token or data: redaction (a third of a line's
  // CPU, and a line per direct write is the webhook's costliest step after JSON) has nothing to do there.
  const decisions = logger.child({}, { redact: { paths: [] } });
  const now = deps.now ?? Date.now;
  const recent = new RecentKeys(REPEAT_WINDOW_MS, MAX_REMEMBERED_WRITES);
  const tools = new ToolLabels(
    deps.config.webhook?.maxToolSeries ?? DEFAULT_MAX_TOOL_SERIES,
    deps.config.toolNamespacePrefix,
  );
  const requests = new Map<string, ReturnType<typeof metrics.admissionRequests.labels>>();
  const durations = new Map<WebhookName, ReturnType<typeof metrics.admissionDuration.labels>>();
  // Labelled children, looked up once per label set (bounded: ToolLabels caps tools, kinds and operations are few).
  const writes = new Map<string, ReturnType<typeof metrics.directWrites.labels>>();
  const finish = (webhook: WebhookName, outcome: Outcome, started: number): void => {
    let duration = durations.get(webhook);
    if (duration === undefined) {
      duration = metrics.admissionDuration.labels({ webhook });
      durations.set(webhook, duration);
    }
    duration.observe((performance.now() - started) / 1000);
    const key = `${webhook}/${outcome}`;
    let count = requests.get(key);
    if (count === undefined) {
      count = metrics.admissionRequests.labels({ webhook, decision: outcome });
      requests.set(key, count);
    }
    count.inc();
  };

  const record = (recording: Recording | undefined, allowed: boolean): boolean => {
    if (recording === undefined) return false;
    switch (recording.metric) {
      case 'directWrites': {
        if (!allowed || !recent.firstSeen(recording.key, now())) return false;
        const { tool_name, kind, operation } = recording.labels;
        const labels = {
          tool_name: tools.label(tool_name),
          kind: kindLabel(kind),
          operation: operationLabel(operation),
        };
        const key = `${labels.tool_name}\n${labels.kind}\n${labels.operation}`;
        let counter = writes.get(key);
        if (counter === undefined) {
          counter = metrics.directWrites.labels(labels);
          writes.set(key, counter);
        }
        counter.inc();
        return true;
      }
      case 'breakGlass':
        if (!allowed) return false;
        metrics.breakGlass.inc({
          resource: resourceLabel(recording.labels.resource),
          operation: operationLabel(recording.labels.operation),
        });
        return true;
      case 'storageWritesDenied':
        if (allowed) return false;
        metrics.storageWritesDenied.inc({ operation: operationLabel(recording.labels.operation) });
        return true;
    }
  };

  const log = (
    webhook: WebhookName,
    request: AdmissionRequest,
    decision: Decision,
    counted: boolean,
    started: number,
  ): void => {
    const level = decision.recording?.metric === 'directWrites' && !counted ? 'debug' : decision.level;
    if (!decisions.isLevelEnabled(level)) return;
    decisions[level](
      {
        webhook,
        uid: clip(request.uid),
        namespace: clip(request.namespace),
        name: clip(objectName(request)),
        kind: clip(request.kind.kind),
        operation: request.operation,
        user: clip(request.userInfo.username),
        dryRun: request.dryRun === true,
        decision: decisionOf(decision),
        reason: decision.source,
        counted,
        durationMs: performance.now() - started,
      },
      'admission decision',
    );
  };

  return (webhook, body) => {
    const started = performance.now();
    let parsed: unknown;
    let request: AdmissionRequest;
    try {
      parsed = JSON.parse(body);
      request = parseAdmissionReview(parsed);
    } catch (err) {
      finish(webhook, 'error', started);
      const message = err instanceof AppError ? err.message : `AdmissionReview: not valid JSON: ${errorMessage(err)}`;
      const uid = readableUid(parsed);
      logger.info({ webhook, uid: clip(uid), err: clip(message) }, 'admission review rejected');
      return uid === undefined ? errorAnswer(400, message) : undecided(webhook, uid, 400, message);
    }
    try {
      const ctx: PolicyContext = {
        identities: deps.config.identities,
        toolNamespacePrefix: deps.config.toolNamespacePrefix,
        phase: deps.phase(),
      };
      const decision = WEBHOOKS[webhook](request, ctx);
      const counted = record(decision.recording, decision.verdict.allowed);
      const answer = JSON.stringify(buildAdmissionResponse(request.uid, decision.verdict));
      finish(webhook, decisionOf(decision), started);
      log(webhook, request, decision, counted, started);
      return { status: 200, body: answer };
    } catch (err) {
      finish(webhook, 'error', started);
      logger.error({ webhook, uid: clip(request.uid), err }, 'admission decision failed');
      return undecided(webhook, request.uid, 500, 'internal error deciding the admission review');
    }
  };
}
