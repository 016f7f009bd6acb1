export { classifyWorkload, type WorkloadClass } from './classify.js';
export {
  parseWorkload,
  type ParseOptions,
  type ParseResult,
  type ParseWarning,
  type ParseWarningCode,
} from './parse.js';
export { renderWorkloads, type RenderOptions, type RenderResult } from './render.js';
export {
  DEFAULT_RUNTIME_SETTINGS,
  DEFAULT_PREBUILT_IMAGES,
  prebuiltImagesFromImageConfig,
  type RuntimeSettings,
  type ImageConfigResult,
} from './settings.js';
export { ERA_TABLE, detectEra, type EraId, type EraFeature, type WorkloadEra } from './eras.js';
export {
  LABELS,
  ANNOTATIONS,
  MANAGED_BY_JOBS_FRAMEWORK,
  MANAGED_BY_WEBSERVICE,
  COMPONENT_BY_TYPE,
  KIND_BY_TYPE,
  generateLabels,
  labelSelector,
} from './labels.js';
export { parseCommand, renderCommand, COMMAND_WRAPPER, type CommandLayout, type ParsedCommand } from './command.js';
export { isObject, type KObject } from './object.js';
