import type { Phase } from '../phase/behaviour.js';
import type { Config } from '../config/schema.js';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { WebhookMetrics } from '../metrics/registry.js';
import { objectName } from './policy/evidence.js';
import { decideProtectStorage } from './policy/protect-storage.js';
import { decideRecordDirectWrite } from './policy/record-direct-writes.js';
import type { Decision, PolicyContext, WebhookName } from './policy/types.js';
import { Recorder } from './recorder.js';
import type { Outcome } from './recorder.js';
import { buildAdmissionResponse, parseAdmissionReview, readableUid, undecidedAdmissionResponse } from './review.js';
import type { AdmissionRequest } from './review.js';

export const WEBHOOKS: Readonly<Record<WebhookName, (request: AdmissionRequest, ctx: PolicyContext) => Decision>> = {
  'protect-storage': decideProtectStorage,
  'record-direct-writes': decideRecordDirectWrite,
};

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

/**
 * One review decided: the type every piece of the admission pipeline has, so each cross-cutting concern (recording,
 * timing, the decision line) wraps the next as a decorator. `started` is the review's `performance.now()` on arrival,
 * before its body was parsed.
 */
export type Decide = (webhook: WebhookName, request: AdmissionRequest, started: number) => Decision;

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

function outcomeOf(decision: Decision): Outcome {
  return decision.verdict.allowed ? 'allow' : 'deny';
}

/** The policies: `WEBHOOKS[webhook]` over the request, in the context in force (read on every review). */
export function decideByPolicy(context: () => PolicyContext): Decide {
  return (webhook, request) => WEBHOOKS[webhook](request, context());
}

/** Applies what each decision records once the answer is known, and says whether it counted (`Decision.counted`). */
export function withRecording(recorder: Recorder, next: Decide): Decide {
  return (webhook, request, started) => {
    const decision = next(webhook, request, started);
    if (decision.recording === undefined) return decision;
    return { ...decision, counted: recorder.record(decision.recording, decision.verdict.allowed) };
  };
}

/** Times each review and counts it by outcome; a decision that throws is counted as `error` and rethrown. */
export function withTiming(recorder: Recorder, next: Decide): Decide {
  return (webhook, request, started) => {
    let decision: Decision;
    try {
      decision = next(webhook, request, started);
    } catch (err) {
      recorder.finish(webhook, 'error', started);
      throw err;
    }
    recorder.finish(webhook, outcomeOf(decision), started);
    return decision;
  };
}

/**
 * Logs each decision at its level: info for recorded direct writes and denials, warn for break-glass writes; a
 * repeated call for a direct write already recorded logs at debug, like routine allows. The line's fields are the
 * review's identifiers, never a token or data, so the logger needs no redaction (a third of a line's CPU).
 */
export function withDecisionLog(logger: Logger, next: Decide): Decide {
  const decisions = logger.child({}, { redact: { paths: [] } });
  return (webhook, request, started) => {
    const decision = next(webhook, request, started);
    const counted = decision.counted === true;
    const level = decision.recording?.metric === 'directWrites' && !counted ? 'debug' : decision.level;
    if (!decisions.isLevelEnabled(level)) return decision;
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
        decision: outcomeOf(decision),
        reason: decision.source,
        counted,
        durationMs: performance.now() - started,
      },
      'admission decision',
    );
    return decision;
  };
}

/** A review body read: its request, or what was wrong with it and the uid when one was readable. */
type Decoded = { request: AdmissionRequest } | { message: string; uid: string | undefined };

function decode(body: string): Decoded {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
    return { request: parseAdmissionReview(parsed) };
  } catch (err) {
    const message = err instanceof AppError ? err.message : `AdmissionReview: not valid JSON: ${errorMessage(err)}`;
    return { message, uid: readableUid(parsed) };
  }
}

/**
 * Decides one AdmissionReview body for `webhook`: decode → policies → record → time → log. Never throws. Every
 * review whose `request.uid` is readable is answered 200 with an AdmissionReview echoing it: a malformed one with
 * `status.code` 400, an unexpected failure with 500 (see `ALLOWED_WHEN_UNDECIDED`), both counted as decision
 * `error`. Only a body without a readable uid (not JSON, no request) gets an HTTP 400 with a JSON message.
 */
export function createAdmissionHandler(deps: AdmissionDeps): AdmissionHandler {
  const { config, logger } = deps;
  const recorder = new Recorder(deps.metrics, {
    maxToolSeries: config.webhook?.maxToolSeries,
    toolNamespacePrefix: config.toolNamespacePrefix,
    now: deps.now,
  });
  const policies = decideByPolicy(() => ({
    identities: config.identities,
    toolNamespacePrefix: config.toolNamespacePrefix,
    phase: deps.phase(),
  }));
  const decide = withDecisionLog(logger, withTiming(recorder, withRecording(recorder, policies)));

  return (webhook, body) => {
    const started = performance.now();
    const decoded = decode(body);
    if (!('request' in decoded)) {
      recorder.finish(webhook, 'error', started);
      const { message, uid } = decoded;
      logger.info({ webhook, uid: clip(uid), err: clip(message) }, 'admission review rejected');
      return uid === undefined ? errorAnswer(400, message) : undecided(webhook, uid, 400, message);
    }
    const { request } = decoded;
    try {
      const decision = decide(webhook, request, started);
      return { status: 200, body: JSON.stringify(buildAdmissionResponse(request.uid, decision.verdict)) };
    } catch (err) {
      logger.error({ webhook, uid: clip(request.uid), err }, 'admission decision failed');
      return undecided(webhook, request.uid, 500, 'internal error deciding the admission review');
    }
  };
}
