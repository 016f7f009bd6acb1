import type { ToolPlan } from './plan.js';
import {
  renderIndexCsv,
  renderIndexMarkdown,
  renderJobsYaml,
  renderJson,
  renderMarkdown,
  toolFolder,
  type MessageOptions,
} from './render.js';

/** The files `migrate --all --out DIR` writes, as relative paths and contents: the caller does the writing. */
export interface MigrationFile {
  path: string;
  content: string;
}

/** One folder per tool that has jobs to migrate: jobs.yaml, message.md (the message) and plan.json. */
export function toolFiles(plan: ToolPlan, options: MessageOptions): MigrationFile[] {
  if (plan.jobs.length === 0) return [];
  const dir = toolFolder(plan.tool);
  const jobsYaml = renderJobsYaml(plan);
  return [
    { path: `${dir}/jobs.yaml`, content: jobsYaml },
    { path: `${dir}/message.md`, content: renderMarkdown(plan, options, jobsYaml) },
    { path: `${dir}/plan.json`, content: renderJson(plan) },
  ];
}

/** index.csv (every tool, ranked) and index.md (the tools with something to migrate, ranked, with links). */
export function indexFiles(plans: readonly ToolPlan[], options: MessageOptions): MigrationFile[] {
  return [
    { path: 'index.csv', content: renderIndexCsv(plans) },
    { path: 'index.md', content: renderIndexMarkdown(plans, options) },
  ];
}
