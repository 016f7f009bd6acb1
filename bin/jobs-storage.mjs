#!/usr/bin/env node
// In a source checkout, runs src/ through tsx (never a stale build); in an image without src/, runs dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (existsSync(`${root}src/main.ts`)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(`${root}src/main.ts`).href);
} else {
  await import(pathToFileURL(`${root}dist/main.js`).href);
}
