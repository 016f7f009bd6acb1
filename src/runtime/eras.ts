import { LABELS } from './labels.js';

/**
 * The formats jobs-api has written over time (toolforge-domain.md §1.5). Detection is a first-match table over
 * facts read from the object; features record the smaller changes within an era.
 */

export type EraId = 'pre-release' | 'v1-unwrapped' | 'v1' | 'v1-new-format' | 'v2';

export interface EraFacts {
  labels: Readonly<Record<string, string>>;
  version: number;
  command: readonly string[];
}

interface EraRule {
  id: EraId;
  /** Dates of the jobs-api code that wrote this format. */
  period: string;
  description: string;
  matches: (facts: EraFacts) => boolean;
}

export const ERA_TABLE: readonly EraRule[] = [
  {
    id: 'pre-release',
    period: '2021-06-03 → 2021-06-21 (toolsbeta)',
    description: "component label 'tool', no 'toolforge' label",
    matches: (f) => f.labels[LABELS.component] === 'tool' || f.labels[LABELS.toolforge] === undefined,
  },
  {
    id: 'v1-new-format',
    period: '2022-12-23 → 2023-05-04',
    description: 'version 1 with command-new-format: "exec 1>>OUT;exec 2>>ERR;<cmd>"',
    matches: (f) => f.version === 1 && f.labels[LABELS.commandNewFormat] === 'yes',
  },
  {
    id: 'v1-unwrapped',
    period: '2021-06-21 → 2021-07-12',
    description: 'version 1, command: [<cmd>] without shell or redirects',
    matches: (f) => f.version === 1 && !(f.command.at(-1) ?? '').includes(' 1>'),
  },
  {
    id: 'v1',
    period: '2021-07-12 → 2023-05-04',
    description: 'version 1, "<cmd> 1>>OUT 2>>ERR" in a shell (/dev/null without filelog)',
    matches: (f) => f.version === 1,
  },
  {
    id: 'v2',
    period: '2023-05-04 → now',
    description: 'version 2: redirects only with filelog',
    matches: () => true,
  },
];

export type EraFeature =
  | 'batch-v1beta1'
  | 'container-named-after-job'
  | 'home-volume'
  | 'full-selector'
  | 'minimal-selector'
  | 'cron-annotation'
  | 'raw-macro-schedule'
  | 'filelog'
  | 'relative-log-paths'
  | 'absolute-log-paths'
  | 'launcher-prefix'
  | 'shell-less'
  | 'split-args'
  | 'mount-label'
  | 'emails-label'
  | 'health-check'
  | 'implicit-tcp-probe'
  | 'port'
  | 'port-env'
  | 'timeout'
  | 'restarted';

export interface WorkloadEra {
  id: EraId;
  period: string;
  description: string;
  features: EraFeature[];
}

export function detectEra(facts: EraFacts): Omit<WorkloadEra, 'features'> {
  const rule = ERA_TABLE.find((r) => r.matches(facts)) ?? ERA_TABLE[ERA_TABLE.length - 1];
  return {
    id: rule?.id ?? 'v2',
    period: rule?.period ?? '',
    description: rule?.description ?? '',
  };
}

/** The version label as jobs-api reads it: missing means 1; null where `int()` would raise. */
export function versionOf(labels: Readonly<Record<string, string>>): number | null {
  const raw = labels[LABELS.version] ?? '1';
  return /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : null;
}
