// Workloads are read through `readWorkload` (runtime/read): the parser and classifier are not exported here.
export { classifyFacts, type WorkloadClass } from './classify.js';
export { workloadFacts, ownerCronJob, type WorkloadFacts } from './facts.js';
export { readWorkload, type WorkloadReading } from './read.js';
export {
  type ParseOptions,
  type ParseResult,
  type ParsedWorkload,
  type ParseWarning,
  type ParseWarningCode,
} from './parse.js';
export { renderJobWorkloads, type RenderOptions, type RenderResult } from './render.js';
export {
  DEFAULT_RUNTIME_SETTINGS,
  DEFAULT_PREBUILT_IMAGES,
  prebuiltImagesFromImageConfig,
  loadRuntimeSettings,
  type RuntimeSettings,
  type ImageConfigResult,
} from './settings.js';
export { ERA_TABLE, detectEra, type EraId, type EraFeature, type WorkloadEra } from './eras.js';
export {
  LABELS,
  WORKLOAD_ANNOTATIONS,
  MANAGED_BY_JOBS_FRAMEWORK,
  MANAGED_BY_WEBSERVICE,
  generateLabels,
  labelSelector,
} from './labels.js';
export {
  WORKLOAD_KINDS,
  workloadKindOf,
  workloadKindForJobType,
  type WorkloadKind,
  type WorkloadKindName,
} from './kinds.js';
export { podView, podPaths, firstCommand, type PodView, type PodPaths, type PodReading } from './pod.js';
export { parseCommand, renderCommand, COMMAND_WRAPPER, type CommandLayout, type ParsedCommand } from './command.js';
export { isObject, type KObject } from './object.js';
