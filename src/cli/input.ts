import { readFileSync } from 'node:fs';
import { LineCounter, parseAllDocuments } from 'yaml';
import { InputError, errorMessage } from '../errors.js';

/** One Kubernetes object read from a file, with where it came from for error messages. */
export interface InputObject {
  value: unknown;
  /** "<file>:<line>" of the document (or List item) the object starts at. */
  location: string;
}

/**
 * Reads YAML or JSON from a file ('-' for stdin): any number of documents, each an object, a `kind: List` or
 * a JSON array of objects. A syntax error throws an InputError naming the file and line.
 */
export function readObjects(file: string, readStdin: () => string = () => readFileSync(0, 'utf8')): InputObject[] {
  const name = file === '-' ? '<stdin>' : file;
  let text: string;
  try {
    text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError('ERR_INPUT_READ', `cannot read: ${errorMessage(err)}`, name, { cause: err });
  }
  return parseObjects(text, name);
}

export function parseObjects(text: string, name: string): InputObject[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: false });
  const out: InputObject[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const problem = doc.errors[0];
    if (problem) {
      const line = problem.linePos?.[0].line ?? lines.linePos(problem.pos[0]).line;
      throw new InputError(
        'ERR_INPUT_PARSE',
        `not valid YAML or JSON: ${firstLine(problem.message)}`,
        `${name}:${line}`,
      );
    }
    const start = doc.contents?.range[0] ?? 0;
    const location = `${name}:${lines.linePos(start).line}`;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    out.push(...expand(value, location));
  }
  return out;
}

function expand(value: unknown, location: string): InputObject[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => expand(item, `${location} [${i}]`));
  if (isList(value)) return value.items.flatMap((item, i) => expand(item, `${location} items[${i}]`));
  return [{ value, location }];
}

function isList(value: unknown): value is { items: unknown[] } {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['kind'] === 'string' && v['kind'].endsWith('List') && Array.isArray(v['items']);
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
