import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PHASES, phaseBehaviour } from '../../phase/behaviour.js';
import type { Operation } from '../review.js';
import {
  MAX_WARNING_LENGTH,
  breakGlassWarning,
  directWriteWarning,
  jobsCommand,
  jobsFrameworkDeniedMessage,
  storageDeniedMessage,
} from './messages.js';

const KINDS = ['ScheduledJob', 'ContinuousJob', 'OneOffJob', 'CronJob', 'Deployment', 'Job', 'SomethingNew'];
const OPERATIONS: Operation[] = ['CREATE', 'UPDATE', 'DELETE'];
const NAMES = ['', 'daily', 'x'.repeat(52), 'y'.repeat(253)];

test('the command names the job and the kind of job', () => {
  assert.equal(jobsCommand('ScheduledJob', 'CREATE', 'daily'), 'toolforge jobs run daily --schedule ...');
  assert.equal(jobsCommand('Deployment', 'CREATE', 'bot'), 'toolforge jobs run bot --continuous ...');
  assert.equal(jobsCommand('Job', 'CREATE', 'once'), 'toolforge jobs run once ...');
  assert.equal(jobsCommand('ContinuousJob', 'DELETE', 'bot'), 'toolforge jobs delete bot');
  assert.equal(jobsCommand('CronJob', 'UPDATE', 'daily'), 'toolforge jobs load <jobs.yaml>');
  assert.equal(jobsCommand('SomethingNew', 'CREATE', 'a'), 'toolforge jobs ...');
  assert.equal(jobsCommand('CronJob', 'DELETE', ''), 'toolforge jobs delete <name>');
});

test(`every text stays within ${MAX_WARNING_LENGTH} characters, also for the longest names`, () => {
  for (const kind of KINDS) {
    for (const operation of OPERATIONS) {
      for (const name of NAMES) {
        const texts = [
          storageDeniedMessage(kind, operation, name),
          jobsFrameworkDeniedMessage(kind, operation, name),
          breakGlassWarning(kind, name, 'system:masters'),
          ...PHASES.map((p) => directWriteWarning(kind, operation, name, phaseBehaviour(p))),
        ];
        for (const text of texts) {
          assert.ok(text.length <= MAX_WARNING_LENGTH, `${text.length}: ${text}`);
          assert.doesNotMatch(text, /\n/);
        }
      }
    }
  }
});
