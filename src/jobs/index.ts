export * from './model.js';
export * from './defaults.js';
export {
  parseCron,
  cronFromRuntime,
  formatCron,
  expandCronMacro,
  CRON_MACROS,
  CRON_FIELDS,
  type CronResult,
} from './cron.js';
export {
  parseQuantity,
  formatCpu,
  formatMemory,
  quantitiesEqual,
  decToString,
  halfDec,
  compareDec,
  pyFloatRepr,
  type Dec,
} from './quantity.js';
export {
  resolveImageReference,
  splitImageReference,
  imageUrl,
  imageTypeOf,
  type PrebuiltImage,
  type ImageSettings,
  type ImageReference,
  type ResolvedImage,
  type ImageMatch,
} from './images.js';
export { resolveJob, resolveImage, toolHome, type ResolveSettings } from './resolve.js';
export { normalizePosixPath, resolveFilelogPath } from './paths.js';
export {
  validateJob,
  hasErrors,
  JOB_NAME_PATTERN,
  JOB_NAME_MAX_LENGTH,
  LEGACY_JOB_NAME_MAX_LENGTH,
  type ValidationIssue,
  type ValidationCode,
} from './validate.js';
