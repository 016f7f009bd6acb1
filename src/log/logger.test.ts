import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { STDOUT_BUFFER_BYTES, STDOUT_FLUSH_MS, atTime, batchedDestination, createLogger } from './logger.js';
import { fileURLToPath } from 'node:url';

const LOGGER = fileURLToPath(new URL('./logger.ts', import.meta.url));

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: { msg: string; n?: number; level: string }[];
}

/** Runs `body` in a child process with `logger` (the stdout logger) in scope; resolves with the lines it printed. */
function runChild(body: string, onLine?: (line: string, kill: () => void) => void): Promise<Child> {
  const script = `import { createLogger } from ${JSON.stringify(LOGGER)};\nconst logger = createLogger({ level: 'info', buffered: true });\n${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const line of chunk.split('\n')) if (line !== '') onLine?.(line, () => child.kill('SIGKILL'));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      try {
        const lines = out
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Child['lines'][number]);
        resolve({ code, signal, lines });
      } catch (e) {
        reject(new Error(`unreadable child output: ${String(e)}\nstdout: ${out}\nstderr: ${err}`));
      }
    });
  });
}

const LOG_500 = 'for (let n = 0; n < 500; n++) logger.info({ n }, "line");';

describe('stdout logger (buffered)', () => {
  test('every line reaches stdout, in order, when the process ends by itself', async () => {
    const { code, lines } = await runChild(LOG_500);
    assert.equal(code, 0);
    assert.deepEqual(
      lines.map((l) => l.n),
      Array.from({ length: 500 }, (_, n) => n),
    );
  });

  test('process.exit does not lose the buffered lines', async () => {
    const { code, lines } = await runChild(`${LOG_500}\nlogger.fatal('bye');\nprocess.exit(3);`);
    assert.equal(code, 3);
    assert.equal(lines.length, 501);
    assert.equal(lines.at(-1)?.msg, 'bye');
  });

  test('an uncaught exception does not lose the buffered lines', async () => {
    const { code, lines } = await runChild(`${LOG_500}\nsetImmediate(() => { throw new Error('boom'); });`);
    assert.equal(code, 1);
    assert.equal(lines.length, 500);
  });

  test('a SIGTERM handled by a drain (as the webhook and the sync do) does not lose them either', async () => {
    const { code, lines } = await runChild(
      `process.once('SIGTERM', () => { logger.info('draining'); clearInterval(keep); });\n` +
        `const keep = setInterval(() => undefined, 1000);\n${LOG_500}\nprocess.kill(process.pid, 'SIGTERM');`,
    );
    assert.equal(code, 0);
    assert.equal(lines.length, 501);
    assert.equal(lines.at(-1)?.msg, 'draining');
  });

  test('a line of a quiet process is written while the process runs, not only at exit', async () => {
    let seen = false;
    const { signal, lines } = await runChild(
      `logger.info('alone');\nsetInterval(() => undefined, 1000);`,
      (line, kill) => {
        seen = line.includes('"alone"');
        // The child would run forever: it is killed once the line arrived, so the line came from the flush deadline.
        if (seen) kill();
      },
    );
    assert.equal(signal, 'SIGKILL');
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['alone'],
    );
  });
});

describe('batchedDestination', () => {
  test('holds lines until a batch is full, writes a full batch at once and the rest by the deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'batched-'));
    try {
      const file = join(dir, 'out.log');
      const dest = batchedDestination(file);
      const line = `${'x'.repeat(99)}\n`;
      dest.write(line);
      assert.equal(readFileSync(file, 'utf8'), '', 'a lone line waits for its batch');
      const full = Math.ceil(STDOUT_BUFFER_BYTES / line.length);
      for (let i = 1; i < full; i++) dest.write(line);
      assert.equal(readFileSync(file, 'utf8'), line.repeat(full), 'a full batch is written at once');
      dest.write('last\n');
      await sleep(STDOUT_FLUSH_MS + 150);
      assert.equal(readFileSync(file, 'utf8'), `${line.repeat(full)}last\n`, 'the rest is written by the deadline');
      dest.flushSync();
      assert.equal(readFileSync(file, 'utf8').length, line.length * full + 5, 'nothing is written twice');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('a line written inside atTime carries that time, and the lines after it the time they are written', () => {
  const lines: { msg: string; time: string }[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string; time: string });
        done();
      },
    }),
  });
  const then = Date.parse('2026-01-02T03:04:05.678Z');
  atTime(then, () => logger.child({ component: 'webhook' }).info('decided earlier'));
  const before = Date.now();
  logger.info('now');
  assert.equal(lines[0]?.time, '2026-01-02T03:04:05.678Z');
  assert.ok(Date.parse(lines[1]?.time ?? '') >= before);
  assert.throws(
    () =>
      atTime(then, () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  logger.info('after a throw');
  assert.ok(Date.parse(lines[2]?.time ?? '') >= before, 'a throw does not leave the time held');
});
