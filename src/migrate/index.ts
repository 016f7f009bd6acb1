export {
  LOAD_KEYS,
  validateLoadFile,
  validateLoadEntry,
  hasLoadErrors,
  jobFromLoadEntry,
  parsePortValue,
  isBuildserviceImageName,
  type LoadEntry,
  type LoadKey,
  type LoadIssue,
  type LoadIssueCode,
} from './load-file.js';
export { entryFromJob, sortedEntry, type EntryNote, type EntryNoteCode, type EntryResult } from './entry.js';
export {
  convertForeign,
  type ForeignConversion,
  type ForeignFailure,
  type ForeignNote,
  type ForeignResult,
  type ProblemCode,
} from './foreign.js';
export { functionalDiff, functionalView, type FunctionalDifference } from './functional.js';
export { checkBehaviour, type BehaviourInput, type BehaviourResult } from './behaviour.js';
export {
  planTool,
  groupByTool,
  lastDirectWrite,
  type PlanInput,
  type ToolPlan,
  type JobMigration,
  type MigrationNote,
  type MigrationReason,
  type DirectWrite,
  type SkippedObject,
} from './plan.js';
export {
  renderJobsYaml,
  renderJson,
  renderMarkdown,
  renderIndexCsv,
  renderIndexMarkdown,
  rankTools,
  indexRow,
  runCommand,
  toolFolder,
  type MessageOptions,
  type IndexRow,
} from './render.js';
export { toolFiles, indexFiles, type MigrationFile } from './files.js';
