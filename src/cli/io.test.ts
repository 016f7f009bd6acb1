import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, formatProgress, showProgress } from './io.js';
import type { CliIo, ProgressState } from './io.js';

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0 s'],
    [-3, '0 s'],
    [41.6, '42 s'],
    [59.4, '59 s'],
    [60, '1 min 00 s'],
    [185, '3 min 05 s'],
    [3599, '59 min 59 s'],
    [3600, '1 h 00 min'],
    [3720, '1 h 02 min'],
  ];
  for (const [seconds, expected] of cases) {
    test(`${seconds} s → ${expected}`, () => assert.equal(formatDuration(seconds), expected));
  }
});

describe('formatProgress', () => {
  const cases: Array<[ProgressState, string]> = [
    [{ done: 0, total: 20000, seconds: 0 }, 'import: 0/20000 (0%), ETA unknown'],
    [{ done: 0, total: 20000, seconds: 3 }, 'import: 0/20000 (0%), ETA unknown'],
    [{ done: 5000, total: 20000, seconds: 5 }, 'import: 5000/20000 (25%), 1000 jobs/s, ETA 15 s'],
    [{ done: 3, total: 400, seconds: 2 }, 'import: 3/400 (0%), 1.5 jobs/s, ETA 4 min 25 s'],
    [{ done: 19999, total: 20000, seconds: 20 }, 'import: 19999/20000 (99%), 1000 jobs/s, ETA 0 s'],
    [{ done: 20000, total: 20000, seconds: 20 }, 'import: 20000/20000 (100%), 1000 jobs/s, done'],
    // A total that grows past what was first planned is never below what is done.
    [{ done: 12, total: 10, seconds: 1 }, 'import: 12/12 (100%), 12 jobs/s, done'],
    [{ done: 0, total: 0, seconds: 1 }, 'import: 0/0 (100%), ETA unknown'],
  ];
  for (const [state, expected] of cases) {
    test(expected, () => assert.equal(formatProgress('import', 'jobs', state), expected));
  }
});

describe('showProgress', () => {
  /** Clears the rest of a terminal line (ANSI "erase in line"). */
  const CLEAR_LINE = '\x1b[K';
  const io = (tty: boolean) => {
    const err: string[] = [];
    const stream: CliIo = { stdout: () => undefined, stderr: (t) => err.push(t), stderrIsTTY: tty };
    return { stream, err };
  };
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  test('on a terminal: one line rewritten in place, ended with a newline', async () => {
    const { stream, err } = io(true);
    let done = 0;
    const reports: ProgressState[] = [];
    const p = showProgress(stream, {
      read: () => ({ done: (done += 1), total: 100 }),
      format: (s) => `${s.done}/${s.total}`,
      report: (s) => reports.push(s),
      ttyEveryMs: 5,
    });
    await wait(40);
    p.stop();
    assert.ok(err.length >= 2, 'updated while writing');
    assert.ok(
      err.slice(0, -1).every((line) => /^\r\d+\/100$/.test(line.replace(CLEAR_LINE, ''))),
      'every update returns to the line start and clears it',
    );
    assert.match(err.at(-1)?.replace(CLEAR_LINE, '') ?? '', /^\r\d+\/100\n$/);
    assert.ok(err.every((line) => line.includes(CLEAR_LINE)));
    assert.deepEqual(reports, [], 'no log lines on a terminal');
  });

  test('off a terminal: a report every period at most, nothing written to stderr directly', async () => {
    const { stream, err } = io(false);
    const reports: ProgressState[] = [];
    const p = showProgress(stream, {
      read: () => ({ done: 1, total: 2 }),
      format: () => 'unused',
      report: (s) => reports.push(s),
      logEveryMs: 15,
    });
    await wait(50);
    p.stop();
    const seen = reports.length;
    await wait(30);
    assert.deepEqual(err, []);
    assert.ok(seen >= 1 && seen <= 4, `about one report per period (${seen})`);
    assert.equal(reports.length, seen, 'nothing after stop');
    assert.deepEqual({ ...reports[0], seconds: 0 }, { done: 1, total: 2, seconds: 0 });
  });
});
