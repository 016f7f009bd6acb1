import { InputError } from '../errors.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  subresource?: string;
  fieldsType?: string;
  fieldsV1?: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  managedFields?: ManagedFieldsEntry[];
  resourceVersion?: string;
  uid?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** The fields of admission.k8s.io/v1 AdmissionRequest this product reads; the rest is kept but not typed. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  options?: { kind?: string; apiVersion?: string; fieldManager?: string; [key: string]: unknown } | null;
}

export interface Denial {
  code: number;
  reason: string;
  message: string;
}

/** What a policy answers; `buildAdmissionResponse` turns it into the AdmissionReview response. */
export type Verdict =
  { allowed: true; warnings: readonly string[] } | { allowed: false; warnings: readonly string[]; denial: Denial };

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    warnings?: string[];
    status?: { code: number; reason: string; message: string };
  };
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string): never {
  throw new InputError('ERR_ADMISSION_DECODE', message, 'AdmissionReview');
}

function requireString(obj: Json, key: string, where: string): string {
  const value = obj[key];
  if (typeof value !== 'string') fail(`${where}.${key} must be a string`);
  return value;
}

function optionalString(obj: Json, key: string, where: string): void {
  const value = obj[key];
  if (value !== undefined && value !== null && typeof value !== 'string') fail(`${where}.${key} must be a string`);
}

function requireObject(obj: Json, key: string, where: string): Json {
  const value = obj[key];
  if (!isObject(value)) fail(`${where}.${key} must be an object`);
  return value;
}

function optionalObject(obj: Json, key: string, where: string): void {
  const value = obj[key];
  if (value !== undefined && value !== null && !isObject(value)) fail(`${where}.${key} must be an object`);
}

function checkGroupVersion(obj: Json, key: string, last: 'kind' | 'resource'): void {
  const where = `request.${key}`;
  const gv = requireObject(obj, key, 'request');
  optionalString(gv, 'group', where);
  requireString(gv, 'version', where);
  requireString(gv, last, where);
  if (gv['group'] === undefined || gv['group'] === null) gv['group'] = '';
}

function checkUserInfo(request: Json): void {
  const userInfo = requireObject(request, 'userInfo', 'request');
  requireString(userInfo, 'username', 'request.userInfo');
  const groups = userInfo['groups'];
  if (groups !== undefined && groups !== null) {
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
      fail('request.userInfo.groups must be a list of strings');
    }
  }
}

/**
 * Validates the parts of an AdmissionReview v1 the policies read and returns its request. Throws `InputError`
 * (`ERR_ADMISSION_DECODE`) on anything else, which the HTTP layer answers with 400. Hand-written rather than a zod
 * schema: this runs on every admission and only a handful of fields matter.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) fail('body must be a JSON object');
  if (body['apiVersion'] !== ADMISSION_API_VERSION) fail(`apiVersion must be ${ADMISSION_API_VERSION}`);
  if (body['kind'] !== 'AdmissionReview') fail('kind must be AdmissionReview');
  const request = requireObject(body, 'request', 'AdmissionReview');
  const uid = requireString(request, 'uid', 'request');
  if (uid === '') fail('request.uid must not be empty');
  checkGroupVersion(request, 'kind', 'kind');
  checkGroupVersion(request, 'resource', 'resource');
  const operation = requireString(request, 'operation', 'request');
  if (!(OPERATIONS as readonly string[]).includes(operation)) fail(`request.operation '${operation}' is not known`);
  checkUserInfo(request);
  for (const key of ['name', 'namespace', 'subResource']) optionalString(request, key, 'request');
  for (const key of ['object', 'oldObject', 'options']) optionalObject(request, key, 'request');
  if (request['dryRun'] !== undefined && request['dryRun'] !== null && typeof request['dryRun'] !== 'boolean') {
    fail('request.dryRun must be a boolean');
  }
  return request as unknown as AdmissionRequest;
}

/** The AdmissionReview v1 answer for `uid`: warnings only when there are some, a Status only on denial. */
export function buildAdmissionResponse(uid: string, verdict: Verdict): AdmissionReviewResponse {
  const response: AdmissionReviewResponse['response'] = { uid, allowed: verdict.allowed };
  if (verdict.warnings.length > 0) response.warnings = [...verdict.warnings];
  if (!verdict.allowed) {
    const { code, reason, message } = verdict.denial;
    response.status = { code, reason, message };
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
