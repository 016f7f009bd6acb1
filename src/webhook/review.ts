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

function optionalStrings(obj: Json, keys: readonly string[], where: string): void {
  for (const key of keys) optionalString(obj, key, where);
}

function optionalStringMap(obj: Json, key: string, where: string): void {
  const value = obj[key];
  if (value === undefined || value === null) return;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    fail(`${where}.${key} must be a map of strings`);
  }
}

function optionalListOfObjects(obj: Json, key: string, where: string, check: (entry: Json, at: string) => void): void {
  const value = obj[key];
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) fail(`${where}.${key} must be a list`);
  value.forEach((entry: unknown, i) => {
    const at = `${where}.${key}[${i}]`;
    if (!isObject(entry)) fail(`${at} must be an object`);
    check(entry, at);
  });
}

function checkOwnerReference(ref: Json, at: string): void {
  optionalStrings(ref, ['apiVersion', 'kind', 'name', 'uid'], at);
  const controller = ref['controller'];
  if (controller !== undefined && controller !== null && typeof controller !== 'boolean') {
    fail(`${at}.controller must be a boolean`);
  }
}

function checkManagedFieldsEntry(entry: Json, at: string): void {
  optionalStrings(entry, ['manager', 'operation', 'apiVersion', 'time', 'subresource', 'fieldsType'], at);
}

/**
 * The object fields the policies read (metadata, kind, a Scale's status.selector) must have their API types: the
 * apiserver always sends them so, and a review that does not is answered as malformed rather than crashing a policy.
 */
function checkObject(request: Json, key: 'object' | 'oldObject'): void {
  const obj = request[key];
  if (obj === undefined || obj === null) return;
  if (!isObject(obj)) fail(`request.${key} must be an object`);
  const where = `request.${key}`;
  optionalStrings(obj, ['apiVersion', 'kind'], where);
  optionalObject(obj, 'metadata', where);
  const metadata = obj['metadata'];
  if (isObject(metadata)) {
    const at = `${where}.metadata`;
    optionalStrings(metadata, ['name', 'generateName', 'namespace', 'resourceVersion', 'uid'], at);
    optionalStringMap(metadata, 'labels', at);
    optionalStringMap(metadata, 'annotations', at);
    optionalListOfObjects(metadata, 'ownerReferences', at, checkOwnerReference);
    optionalListOfObjects(metadata, 'managedFields', at, checkManagedFieldsEntry);
  }
  const status = obj['status'];
  if (isObject(status)) optionalString(status, 'selector', `${where}.status`);
}

/**
 * The uid of a review that is at least a JSON object with `request.uid`, so even a malformed review can be answered
 * with an AdmissionReview that the apiserver matches to its call; undefined when there is none to echo.
 */
export function readableUid(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const request = body['request'];
  if (!isObject(request)) return undefined;
  const uid = request['uid'];
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}

/**
 * Validates the parts of an AdmissionReview v1 the policies read and returns its request. Throws `InputError`
 * (`ERR_ADMISSION_DECODE`) on anything else, which is answered with `status.code` 400 (see `readableUid`). Hand-written rather than a zod
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
  for (const key of ['name', 'namespace', 'subResource']) {
    optionalString(request, key, 'request');
    if (request[key] === null) delete request[key];
  }
  checkObject(request, 'object');
  checkObject(request, 'oldObject');
  optionalObject(request, 'options', 'request');
  const options = request['options'];
  if (isObject(options)) optionalString(options, 'fieldManager', 'request.options');
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

/** The `status.reason` of the codes an undecided review is answered with. */
const UNDECIDED_REASONS = { 400: 'BadRequest', 500: 'InternalError' } as const;

/**
 * The answer to a review that could not be decided (malformed: 400, internal error: 500), as controller-runtime
 * answers it: an AdmissionReview echoing `uid` with the code in `status`, allowed or not as the webhook fails (open
 * or closed). kube-apiserver logs the status and applies the answer.
 */
export function undecidedAdmissionResponse(
  uid: string,
  allowed: boolean,
  code: keyof typeof UNDECIDED_REASONS,
  message: string,
): AdmissionReviewResponse {
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: { uid, allowed, status: { code, reason: UNDECIDED_REASONS[code], message } },
  };
}
