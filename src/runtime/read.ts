import { classifyFacts } from './classify.js';
import type { WorkloadClass } from './classify.js';
import { workloadFacts } from './facts.js';
import { parseWorkload } from './parse.js';
import type { ParseOptions, ParseResult } from './parse.js';
import type { RuntimeSettings } from './settings.js';

export interface WorkloadReading {
  class: WorkloadClass;
  /** The job, for a scheduled or continuous job definition (class `job`) only. */
  parsed?: ParseResult;
}

/**
 * Reads a workload the way jobs-api would: its kind, tool, era and CronJob owner are found once, then it is
 * classified and — when it is a job definition — parsed. Never throws.
 */
export function readWorkload(obj: unknown, settings: RuntimeSettings, options: ParseOptions = {}): WorkloadReading {
  const facts = workloadFacts(obj, settings.toolNamespacePrefix);
  const cls = classifyFacts(facts);
  if (cls.kind !== 'job') return { class: cls };
  return { class: cls, parsed: parseWorkload(obj, settings, options, facts) };
}
