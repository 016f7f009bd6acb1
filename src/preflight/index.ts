export {
  classifyDifference,
  canonicalPath,
  RULES,
  show,
  type Classification,
  type DifferenceClass,
} from './classify.js';
export { commandParts, type CommandParts } from './command-parts.js';
export {
  classifiedDifferences,
  diffWorkloads,
  type ClassifiedDifference,
  type Difference,
  type Verdict,
  type WorkloadDiff,
} from './diff.js';
export {
  canonicalQuantity,
  normalizeWorkload,
  SERVER_ANNOTATIONS,
  SERVER_DEFAULTS,
  SERVER_METADATA_FIELDS,
  type ComparedKind,
} from './normalize.js';
export {
  exitCodeOf,
  formatPreflightJson,
  formatPreflightTable,
  preflightJob,
  preflightReport,
  preflightTool,
  renderFromCr,
  toolUidFromObjects,
  workloadKindOfCr,
  type JobPreflight,
  type OneSidedJob,
  type PreflightErrorCode,
  type PreflightProblem,
  type PreflightReport,
  type PreflightSettings,
  type ToolPreflight,
  type Totals,
} from './preflight.js';
export {
  applyRestore,
  formatRestorePlan,
  restorePlan,
  type PlannedRestore,
  type RestoreOutcome,
  type RestorePlan,
  type RestoreProblem,
  type RestoreRefusal,
  type RestoreSettings,
} from './restore.js';
