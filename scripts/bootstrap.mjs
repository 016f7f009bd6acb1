// Installs the npm dependencies when node_modules is missing or older than the lock file,
// so that `npm test`, `npm run demo` and `npm run bench` work on a fresh clone.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

const marker = 'node_modules/.package-lock.json';
if (mtime(marker) < mtime('package-lock.json')) {
  console.error('[bootstrap] installing npm dependencies (npm ci)');
  const res = spawnSync('npm', ['ci', '--no-fund', '--no-audit'], { stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}

// The runtime the image ships (.node-version): `npm test`, `npm run demo` and `npm run bench` run on it, fetched into
// the cache when the machine's node is another version.
const { nodeBinDir } = await import('./tools/node.mjs');
nodeBinDir();
