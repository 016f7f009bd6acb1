import type { z } from 'zod';
import { failure, InputError, ok, type CodedProblem, type Result } from '../errors.js';
import { namespaceOfTool } from '../jobs/tenancy.js';
import type { StoredJob } from '../jobs/model.js';
import {
  PROVENANCE_ANNOTATIONS,
  STORAGE_API_VERSION,
  STORAGE_GROUP,
  storageKindForJobType,
  storageKindForKind,
} from './kinds.js';
import { specV1 } from './spec-v1.js';
import type { StorageKind } from './kinds.js';

export type RawSpec = Record<string, unknown>;

/** One schema version of the CR spec. */
export interface SpecVersion {
  name: string;
  schema: z.ZodType<RawSpec>;
}

/** A pure step from one spec version to the next. Migrations never see or touch metadata. */
export interface Migration {
  from: string;
  to: string;
  migrate(spec: RawSpec): RawSpec;
}

export interface JobCr {
  apiVersion: string;
  kind: 'ScheduledJob' | 'ContinuousJob';
  metadata: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
  };
  spec: RawSpec;
}

/** A CR read into a job: the job, the spec version it is now, and the one it was written in when that differs. */
export interface DecodedCr {
  job: StoredJob;
  version: string;
  migratedFrom?: string;
}

/**
 * Why a CR does not decode. `path` names the object and the field at fault (`ScheduledJob tool-x/daily spec.cmd`),
 * so `formatProblem` reads as the `InputError` message; `code` tells a bad spec from an unknown spec version.
 */
export type DecodeProblem = CodedProblem<'ERR_STORAGE_DECODE' | 'ERR_STORAGE_VERSION'>;

export type DecodeResult = Result<DecodedCr, DecodeProblem>;

/** Keys jobs-api accepts in a spec but which are not part of a job definition. */
const NON_DEFINITION_KEYS = ['k8s_object', 'status_short', 'status_long'];

export class StorageCodec {
  readonly current: string;
  private readonly versions: ReadonlyMap<string, SpecVersion>;
  private readonly migrations: ReadonlyMap<string, Migration>;

  constructor(options: { versions: readonly SpecVersion[]; migrations: readonly Migration[]; current: string }) {
    this.versions = new Map(options.versions.map((v) => [v.name, v]));
    this.migrations = new Map(options.migrations.map((m) => [m.from, m]));
    this.current = options.current;
    if (!this.versions.has(this.current)) throw new TypeError(`current spec version ${this.current} is not registered`);
    for (const m of options.migrations) {
      if (!this.versions.has(m.from) || !this.versions.has(m.to)) {
        throw new TypeError(`migration ${m.from}→${m.to} names an unregistered version`);
      }
    }
  }

  /** The spec version a CR declares (by annotation); CRs written by jobs-api carry none and are the current one. */
  versionOf(cr: Pick<JobCr, 'metadata'>): string {
    return cr.metadata.annotations?.[PROVENANCE_ANNOTATIONS.specVersion] ?? this.current;
  }

  /**
   * Reads a CR into a job: validates the spec against its own version's schema, migrates it step by step to the
   * current version, validates again. Any failure says which field of which object is wrong.
   */
  read(obj: unknown): DecodeResult {
    // Which object, for error messages only: built when one is needed, not for each of the thousands decoded.
    const where = () => describe(obj);
    const envelope = checkEnvelope(obj, where);
    if (!envelope.ok) return envelope;
    const { cr, kind } = envelope.value;
    const declared = this.versionOf(cr);
    const migrated = this.toCurrent(cr.spec as RawSpec, declared, where);
    if (!migrated.ok) return migrated;
    const spec = migrated.value;
    if (spec['job_type'] !== kind.jobType) {
      return fail(
        'ERR_STORAGE_DECODE',
        `job_type '${String(spec['job_type'])}' does not match kind ${kind.kind}`,
        `${where()} spec.job_type`,
      );
    }
    const job = NON_DEFINITION_KEYS.some((k) => k in spec)
      ? Object.fromEntries(Object.entries(spec).filter(([k]) => !NON_DEFINITION_KEYS.includes(k)))
      : spec;
    return ok(
      declared === this.current
        ? { job: job as unknown as StoredJob, version: this.current }
        : { job: job as unknown as StoredJob, version: this.current, migratedFrom: declared },
    );
  }

  /** Validates a spec against its declared version's schema and migrates it step by step to the current version. */
  private toCurrent(declaredSpec: RawSpec, declared: string, where: () => string): Result<RawSpec, DecodeProblem> {
    let version = declared;
    let spec = declaredSpec;
    for (let steps = 0; ; steps++) {
      const schema = this.versions.get(version);
      if (!schema) return fail('ERR_STORAGE_VERSION', `unknown spec version '${version}'`, where());
      const checked = schema.schema.safeParse(spec);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const path = ['spec', ...(issue?.path ?? []).map(String)].join('.');
        return fail(
          'ERR_STORAGE_DECODE',
          `${issue?.message ?? 'invalid'} (spec version ${version})`,
          `${where()} ${path}`,
        );
      }
      spec = checked.data;
      if (version === this.current) return ok(spec);
      const step = this.migrations.get(version);
      if (!step || steps > this.versions.size) {
        return fail('ERR_STORAGE_VERSION', `no migration from spec version '${version}'`, where());
      }
      spec = step.migrate(structuredClone(spec));
      version = step.to;
    }
  }

  /**
   * The CR for a job exactly as jobs-api stores it: only the set fields in `spec`, no labels, and the
   * given annotations (this project's provenance records) in metadata.
   */
  encode(job: StoredJob, options: EncodeOptions = {}): JobCr {
    return { ...envelope(job, options), spec: dropUndefined(job) };
  }

  /**
   * `JSON.stringify(encode(job, options))`, built from the job's JSON text: jobs-api's spec is the job with only the
   * fields that were set, which is what that text is, so it goes in as it is and the job is neither parsed nor
   * serialised again (the backfill keeps candidates' jobs as that text until their CR is written).
   */
  encodeText(job: JobText, options: EncodeOptions = {}): string {
    const head = JSON.stringify(envelope(job, options));
    return `${head.slice(0, -1)},"spec":${job.json}}`;
  }
}

/** What `encode` and `encodeText` put in metadata besides the name and namespace. */
export interface EncodeOptions {
  namespacePrefix?: string;
  annotations?: Record<string, string>;
}

/** A job as its JSON text (`JSON.stringify(job)`), with the fields that place its CR. */
export interface JobText {
  json: string;
  job_type: StoredJob['job_type'];
  job_name: string;
  tool_name: string;
}

export function jobText(job: StoredJob): JobText {
  return { json: JSON.stringify(job), job_type: job.job_type, job_name: job.job_name, tool_name: job.tool_name };
}

/** A job CR without its spec: apiVersion, kind and metadata, in the order jobs-api writes them. */
function envelope(
  job: Pick<StoredJob, 'job_type' | 'job_name' | 'tool_name'>,
  options: EncodeOptions,
): Omit<JobCr, 'spec'> {
  const kind = storageKindForJobType(job.job_type);
  if (!kind) throw new TypeError(`job type ${job.job_type} is not stored`);
  const metadata: JobCr['metadata'] = {
    name: job.job_name,
    namespace: namespaceOfTool(job.tool_name, options.namespacePrefix),
  };
  if (options.annotations && Object.keys(options.annotations).length > 0)
    metadata.annotations = { ...options.annotations };
  return { apiVersion: STORAGE_API_VERSION, kind: kind.kind, metadata };
}

function dropUndefined(job: StoredJob): RawSpec {
  return JSON.parse(JSON.stringify(job)) as RawSpec;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(obj: unknown): string {
  if (!isRecord(obj)) return 'object';
  const md = isRecord(obj['metadata']) ? obj['metadata'] : {};
  const ns = typeof md['namespace'] === 'string' ? `${md['namespace']}/` : '';
  return `${String(obj['kind'] ?? 'object')} ${ns}${String(md['name'] ?? '?')}`;
}

function fail(code: DecodeProblem['code'], message: string, where: string): Result<never, DecodeProblem> {
  return failure({ code, path: where, message });
}

/** A decode problem as the error a caller throws: its message is `formatProblem(p)`. */
export function decodeError(p: DecodeProblem): InputError {
  return new InputError(p.code, p.message, p.path || undefined);
}

/** The parts of a job CR that must hold before its spec is read: name, group, a stored kind, a spec object. */
function checkEnvelope(obj: unknown, where: () => string): Result<{ cr: JobCr; kind: StorageKind }, DecodeProblem> {
  if (!isRecord(obj) || !isRecord(obj['metadata']) || typeof obj['metadata']['name'] !== 'string') {
    return fail('ERR_STORAGE_DECODE', 'not a job custom resource (no metadata.name)', where());
  }
  if (typeof obj['apiVersion'] !== 'string' || !obj['apiVersion'].startsWith(`${STORAGE_GROUP}/`)) {
    return fail('ERR_STORAGE_DECODE', `apiVersion must be in group ${STORAGE_GROUP}`, where());
  }
  const kind = storageKindForKind(String(obj['kind']));
  if (!kind) return fail('ERR_STORAGE_DECODE', `kind '${String(obj['kind'])}' is not a stored job kind`, where());
  if (!isRecord(obj['spec'])) return fail('ERR_STORAGE_DECODE', 'spec must be an object', `${where()} spec`);
  return ok({ cr: obj as unknown as JobCr, kind });
}

export const SPEC_V1: SpecVersion = { name: 'v1', schema: specV1 as unknown as z.ZodType<RawSpec> };

/** The codec for the versions that exist today. */
export function createStorageCodec(): StorageCodec {
  return new StorageCodec({ versions: [SPEC_V1], migrations: [], current: 'v1' });
}
