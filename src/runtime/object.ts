/** Reading untrusted Kubernetes objects: every accessor names the field it looked at, so errors can point at it. */

export type KObject = Record<string, unknown>;

export function isObject(value: unknown): value is KObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A bad field, found while reading; caught at the module boundary and turned into a result. */
export class FieldError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'FieldError';
  }
}

export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

export function requireObject(value: unknown, path: string): KObject {
  if (!isObject(value)) throw new FieldError(path, value === undefined ? 'is missing' : 'must be an object');
  return value;
}

export function optionalObject(value: unknown, path: string): KObject | undefined {
  return value === undefined || value === null ? undefined : requireObject(value, path);
}

export function requireString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new FieldError(path, value === undefined ? 'is missing' : 'must be a string');
  return value;
}

export function optionalString(value: unknown, path: string): string | undefined {
  return value === undefined || value === null ? undefined : requireString(value, path);
}

export function optionalInteger(value: unknown, path: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new FieldError(path, `must be an integer, got ${JSON.stringify(value)}`);
  return value;
}

export function requireArray(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(path, value === undefined ? 'is missing' : 'must be a list');
  return value;
}

export function stringList(value: unknown, path: string): string[] {
  return requireArray(value, path).map((item, i) => requireString(item, child(path, i)));
}

/** Labels or annotations as a string map; a missing map is empty, a non-string value is an error. */
export function stringMap(value: unknown, path: string): Record<string, string> {
  const map = optionalObject(value, path) ?? {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) out[k] = typeof v === 'string' ? v : requireString(v, child(path, k));
  return out;
}
