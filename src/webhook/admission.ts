import type { Phase } from '../phase/behaviour.js';
import type { Config } from '../config/schema.js';
import { AppError, errorMessage } from '../errors.js';
import { atTime } from '../log/logger.js';
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
  /**
   * How long a decided review's records (counters, timing, decision line) may wait after its answer, ms, so they are
   * applied in batches (`RECORDS_BATCH_MS` in the server). 0, the default: applied before the answer is returned.
   */
  recordsBatchMs?: number;
}

/** An HTTP answer: status and JSON text. */
export interface Answer {
  status: number;
  body: string;
}

export type AdmissionHandler = (webhook: WebhookName, body: string) => Answer;

/**
 * The admission handler and its pending records: `flush` applies them now (at shutdown, on exit; a read of the
 * admission metrics does too).
 */
export interface Admission {
  answer: AdmissionHandler;
  flush(): void;
}

/** What a decision line names of its review; kept instead of the review, whose object may be a megabyte. */
export interface ReviewSubject {
  uid: string;
  namespace: string | undefined;
  name: string | undefined;
  kind: string;
  operation: AdmissionRequest['operation'];
  user: string;
  dryRun: boolean;
}

function subjectOf(request: AdmissionRequest): ReviewSubject {
  return {
    uid: request.uid,
    namespace: request.namespace,
    name: objectName(request),
    kind: request.kind.kind,
    operation: request.operation,
    user: request.userInfo.username,
    dryRun: request.dryRun === true,
  };
}

/**
 * A review decided and answered, with what its records need: when it arrived and was decided (`performance.now()`),
 * and the wall-clock time of the decision, which its log line carries however late it is written.
 */
export interface Decided {
  webhook: WebhookName;
  subject: ReviewSubject;
  decision: Decision;
  started: number;
  finished: number;
  at: number;
}

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
export function decideByPolicy(
  context: () => PolicyContext,
): (webhook: WebhookName, request: AdmissionRequest) => Decision {
  return (webhook, request) => WEBHOOKS[webhook](request, context());
}

/**
 * What a decided review records, in order: its counters (whether a direct write counts depends on the writes before
 * it, `Recorder.record`), its timing under its outcome, and its decision line: info for recorded direct writes and
 * denials, warn for break-glass writes; a repeated call for a direct write already recorded logs at debug, like
 * routine allows. The line's fields are the review's identifiers, never a token or data, so the logger needs no
 * redaction (a third of a line's CPU).
 */
export function recordDecision(recorder: Recorder, logger: Logger): (decided: Decided) => void {
  const decisions = logger.child({}, { redact: { paths: [] } });
  return ({ webhook, subject, decision, started, finished, at }) => {
    const counted =
      decision.recording === undefined ? false : recorder.record(decision.recording, decision.verdict.allowed);
    recorder.finish(webhook, outcomeOf(decision), (finished - started) / 1000);
    const level = decision.recording?.metric === 'directWrites' && !counted ? 'debug' : decision.level;
    if (!decisions.isLevelEnabled(level)) return;
    atTime(at, () =>
      decisions[level](
        {
          webhook,
          uid: clip(subject.uid),
          namespace: clip(subject.namespace),
          name: clip(subject.name),
          kind: clip(subject.kind),
          operation: subject.operation,
          user: clip(subject.user),
          dryRun: subject.dryRun,
          decision: outcomeOf(decision),
          reason: decision.source,
          counted,
          durationMs: finished - started,
        },
        'admission decision',
      ),
    );
  };
}

/**
 * Records applied in batches, at most `ms` after the first of a batch: at a few hundred reviews a second each review
 * arrives alone, and the code that counts and logs it ran cold every time, at several times its cost in a loop. A
 * batch runs it warm, off the answer's path. Order is kept; a record that throws is logged and the rest applied.
 */
class RecordBatch {
  private pending: Decided[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly apply: (decided: Decided) => void,
    private readonly ms: number,
    private readonly logger: Logger,
  ) {}

  push(decided: Decided): void {
    if (this.ms <= 0) {
      this.applyOne(decided);
      return;
    }
    this.pending.push(decided);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.ms);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.pending;
    this.pending = [];
    for (const decided of batch) this.applyOne(decided);
  }

  private applyOne(decided: Decided): void {
    try {
      this.apply(decided);
    } catch (err) {
      this.logger.error({ webhook: decided.webhook, uid: clip(decided.subject.uid), err }, 'admission record failed');
    }
  }
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
 * Decides AdmissionReview bodies: decode → policies → answer, then the review's records (`recordDecision`), in
 * batches when `recordsBatchMs` is set. Never throws. Every review whose `request.uid` is readable is answered 200
 * with an AdmissionReview echoing it: a malformed one with `status.code` 400, an unexpected failure with 500 (see
 * `ALLOWED_WHEN_UNDECIDED`), both counted as decision `error` at once. Only a body without a readable uid (not JSON,
 * no request) gets an HTTP 400 with a JSON message.
 */
export function createAdmission(deps: AdmissionDeps): Admission {
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
  const records = new RecordBatch(recordDecision(recorder, logger), deps.recordsBatchMs ?? 0, logger);
  if ((deps.recordsBatchMs ?? 0) > 0) deps.metrics.applyBeforeRead(() => records.flush());

  const answer: AdmissionHandler = (webhook, body) => {
    const started = performance.now();
    const decoded = decode(body);
    if (!('request' in decoded)) {
      recorder.finish(webhook, 'error', (performance.now() - started) / 1000);
      const { message, uid } = decoded;
      logger.info({ webhook, uid: clip(uid), err: clip(message) }, 'admission review rejected');
      return uid === undefined ? errorAnswer(400, message) : undecided(webhook, uid, 400, message);
    }
    const { request } = decoded;
    let decision: Decision;
    try {
      decision = policies(webhook, request);
    } catch (err) {
      recorder.finish(webhook, 'error', (performance.now() - started) / 1000);
      logger.error({ webhook, uid: clip(request.uid), err }, 'admission decision failed');
      return undecided(webhook, request.uid, 500, 'internal error deciding the admission review');
    }
    records.push({
      webhook,
      subject: subjectOf(request),
      decision,
      started,
      finished: performance.now(),
      at: Date.now(),
    });
    return { status: 200, body: JSON.stringify(buildAdmissionResponse(request.uid, decision.verdict)) };
  };
  return { answer, flush: () => records.flush() };
}

/** The handler alone, its records applied before each answer returns (tests and tools that need no batching). */
export function createAdmissionHandler(deps: Omit<AdmissionDeps, 'recordsBatchMs'>): AdmissionHandler {
  return createAdmission(deps).answer;
}
