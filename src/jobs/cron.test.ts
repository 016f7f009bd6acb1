import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cronFromRuntime, expandCronMacro, formatCron, parseCron } from './cron.js';

// Expected macro expansions were computed with CPython 3.11's random.seed("<tool> <job>") + randint, as jobs-api does.
describe('cron macros derive a fixed time from "<tool> <job>"', () => {
  const cases: [string, string, string, string][] = [
    ['tf-test', 'cronjobtest', '@daily', '13 13 * * *'],
    ['tf-test', 'cronjobtest', '@hourly', '13 * * * *'],
    ['tf-test', 'cronjobtest', '@weekly', '13 13 * * 0'],
    ['tf-test', 'cronjobtest', '@monthly', '13 13 2 * *'],
    ['tf-test', 'cronjobtest', '@yearly', '13 13 2 1 *'],
    ['mytool', 'daily', '@daily', '6 1 * * *'],
    ['mytool', 'daily', '@weekly', '6 1 * * 2'],
    ['mytool', 'backup', '@monthly', '54 14 22 * *'],
    ['mytool', 'backup', '@yearly', '54 14 22 4 *'],
    ['héllo', 'wörld', '@daily', '5 12 * * *'],
    ['tool-with-a-long-name', 'job.with.dots', '@yearly', '54 7 9 9 *'],
  ];
  for (const [tool, job, macro, expected] of cases) {
    test(`${tool} ${job} ${macro} → ${expected}`, () => {
      assert.equal(expandCronMacro(macro, tool, job)?.join(' '), expected);
      const parsed = parseCron(macro, tool, job);
      assert.ok(parsed.ok);
      assert.equal(parsed.value.text, macro);
      assert.equal(formatCron(parsed.value), expected);
    });
  }
});

describe('parseCron', () => {
  test('five fields keep their text and are lower-cased', () => {
    assert.deepEqual(parseCron('*/5  1-3 * JAN mon', 't', 'j'), {
      ok: false,
      problem: {
        path: 'month',
        message: `Unable to parse cron expression "*/5  1-3 * JAN mon": Unable to parse 'jan' as an integer`,
      },
    });
    assert.deepEqual(parseCron('*/5  1-3 * 1,6 mon', 't', 'j'), {
      ok: true,
      value: {
        text: '*/5  1-3 * 1,6 mon',
        minute: '*/5',
        hour: '1-3',
        day: '*',
        month: '1,6',
        day_of_week: 'mon',
      },
    });
  });
  const bad: [string, string | undefined, string][] = [
    ['@reboot', undefined, 'Invalid at-macro'],
    ['* * * *', undefined, 'Expected to find 5 space-separated values, found 4'],
    ['60 * * * *', 'minute', "Invalid value '60', expected 0-59"],
    ['1-5/2 * * * *', 'minute', 'Step syntax is not supported with ranges'],
    ['* 5-2 * * *', 'hour', 'End value 2 must be smaller than start value 5'],
    ['* * 0 * *', 'day', "Invalid value '0', expected 1-31"],
    ['*/0 * * * *', 'minute', "Invalid step value in '*'"],
    ['* * * * mon-fri', 'day_of_week', "Unable to parse 'mon' as an integer"],
  ];
  for (const [text, field, fragment] of bad) {
    test(`rejects ${text}`, () => {
      const r = parseCron(text, 't', 'j');
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.problem.path || undefined, field);
      assert.match(r.problem.message, new RegExp(fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });
  }
  test('an @-macro in capitals is the macro, as jobs-api lower-cases the schedule before parsing', () => {
    const upper = parseCron('@DAILY', 'mytool', 'daily');
    assert.ok(upper.ok);
    assert.equal(formatCron(upper.value), '6 1 * * *');
    assert.equal(upper.value.text, '@DAILY');
    const mixed = parseCron('@Weekly', 'mytool', 'daily');
    assert.ok(mixed.ok);
    assert.equal(formatCron(mixed.value), '6 1 * * 2');
    assert.equal(parseCron('@REBOOT', 't', 'j').ok, false);
  });
  test('sunday as 7 and names are accepted', () => {
    assert.ok(parseCron('0 0 * * 7', 't', 'j').ok);
    assert.ok(parseCron('0 0 * * sun,sat', 't', 'j').ok);
  });
});

test('cronFromRuntime keeps the configured text and the actual fields', () => {
  assert.deepEqual(cronFromRuntime(' 13 13 * * * ', '@daily'), {
    ok: true,
    value: {
      text: '@daily',
      minute: '13',
      hour: '13',
      day: '*',
      month: '*',
      day_of_week: '*',
    },
  });
  assert.equal(cronFromRuntime('@daily', '@daily').ok, false);
});
