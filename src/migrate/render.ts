import { quote as shlexQuote } from 'shlex';
import { Document, isScalar, visit } from 'yaml';
import { YAML_1_1_SAFE } from '../k8s/yaml.js';
import { atDeadline } from '../rollout/phases.js';
import type { LoadEntry } from './load-file.js';
import type { JobMigration, ToolPlan } from './plan.js';

/** The outputs of `migrate`: a tool's jobs.yaml, its plan as JSON, the message to its maintainers, and an index. */

export interface MessageOptions {
  /** The migration deadline as people read it, e.g. "2026-12-15". */
  deadline: string;
  /** Where the migration was announced. */
  announcementUrl: string;
}

/** A load file as `toolforge jobs dump` writes one: block style, keys sorted, schedules quoted. */
export function renderJobsYaml(plan: Pick<ToolPlan, 'tool' | 'entries'>): string {
  const doc = new Document(plan.entries, YAML_1_1_SAFE);
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && isScalar(pair.value) && typeof pair.value.value === 'string') {
        if (pair.key.value === 'schedule' || pair.key.value === 'port') pair.value.type = 'QUOTE_DOUBLE';
      }
    },
  });
  doc.commentBefore = ` Jobs of tool ${plan.tool}, for 'toolforge jobs load jobs.yaml'.`;
  return doc.toString({ lineWidth: 0 });
}

export function renderJson(plan: ToolPlan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

const REASON_TEXT: Readonly<Record<JobMigration['reason'], string>> = {
  'not-in-storage': 'not recorded by the jobs API',
  ignored: 'ignored by the jobs API',
  'edited-directly': 'edited directly',
  'hand-written': 'written by hand',
  unreadable: 'cannot be read',
};

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function day(time: string | undefined): string {
  return time === undefined ? '—' : time.slice(0, 10);
}

/** The detail of a listing; for an edited job, what runs against what jobs-api has on record. */
function why(j: JobMigration): string {
  if (j.differences === undefined || j.differences.length === 0) return j.detail;
  const fields = j.differences.map(
    (d) => `${d.field} ${JSON.stringify(d.after)} (on record: ${JSON.stringify(d.before)})`,
  );
  return `runs ${fields.join(', ')}`;
}

function jobsTable(jobs: readonly JobMigration[]): string[] {
  const lines = [
    '| Job | Kind | Why it is listed | Created | Last written directly | Needs attention |',
    '|---|---|---|---|---|---|',
  ];
  for (const j of jobs) {
    const write = j.lastDirectWrite ? `${day(j.lastDirectWrite.time)} (${j.lastDirectWrite.manager})` : '—';
    lines.push(
      `| \`${cell(j.name)}\` | ${j.kind} | **${REASON_TEXT[j.reason]}**: ${cell(why(j))} | ${day(j.created)} | ${cell(write)} | ${j.needsAttention ? '**yes**' : 'no'} |`,
    );
  }
  return lines;
}

/** `toolforge jobs run` with an entry's options: how a one-off job is started again. */
export function runCommand(entry: LoadEntry): string {
  const parts = ['toolforge', 'jobs', 'run', entry.name];
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'name' || value === undefined) continue;
    parts.push(value === true ? `--${key}` : `--${key}=${shlexQuote(String(value))}`);
  }
  return parts.join(' ');
}

function notesSection(plan: ToolPlan, attention: boolean): string[] {
  const lines: string[] = [];
  for (const j of plan.jobs) {
    const notes = j.notes.filter((n) => n.attention === attention);
    if (notes.length === 0 && !(attention && j.entry === null)) continue;
    lines.push(`- **\`${j.name}\`** (${j.kind})`);
    if (attention && j.entry === null) lines.push(`  - no entry could be written: ${j.detail}`);
    for (const n of notes) {
      const where = n.where ? `\`${n.where}\`: ` : '';
      lines.push(`  - ${where}${n.message}${n.instead ? `. **Instead:** ${n.instead}` : ''}`);
    }
  }
  return lines;
}

/** The message to a tool's maintainers: what was found, what happens at the deadline, the file and the commands. */
export function renderMarkdown(plan: ToolPlan, options: MessageOptions, jobsYaml = renderJobsYaml(plan)): string {
  const out: string[] = [];
  const count = plan.jobs.length;
  out.push(
    `# Tool \`${plan.tool}\`: please move ${count === 1 ? 'one job' : `${count} jobs`} to the jobs API by ${options.deadline}`,
  );
  out.push('');
  if (count === 0) {
    out.push('All jobs of this tool are managed through the jobs API. Nothing to do.');
    return `${out.join('\n')}\n`;
  }
  out.push(
    `Hello maintainers of \`${plan.tool}\`. Toolforge is moving every job to the jobs API (announcement: ${options.announcementUrl}).`,
    "The jobs below run in your tool's namespace but were not created through `toolforge jobs`. The file further down re-creates them through the jobs API.",
    '',
    '## Jobs found',
    '',
    ...jobsTable(plan.jobs),
    '',
    '## What happens at the deadline',
    '',
    atDeadline(plan.phase, options.deadline),
    '',
  );
  if (plan.jobs.some((j) => j.reason === 'edited-directly'))
    out.push(
      'A job edited directly runs something else than the jobs API has on record: the next time the jobs API writes it (a restart, an update of the job, a Toolforge upgrade), the direct changes are lost. Loading the file below records them.',
      '',
    );
  const attention = notesSection(plan, true);
  if (attention.length > 0)
    out.push(
      `## Needs your attention first (${plan.needsAttention} ${plan.needsAttention === 1 ? 'job' : 'jobs'})`,
      '',
      'These settings cannot be carried over as they are. Please deal with them before loading, or the job will behave differently:',
      '',
      ...attention,
      '',
    );
  out.push('## What to do', '');
  if (plan.entries.length > 0) {
    out.push(
      "1. Save this as `jobs.yaml` in the tool's home directory (`become " + plan.tool + '`), and check it:',
      '',
      '```yaml',
      jobsYaml.trimEnd(),
      '```',
      '',
      '2. Load it (jobs-api creates the jobs, and replaces its own objects of the same name):',
      '',
      '```',
      'toolforge jobs load jobs.yaml',
      '```',
      '',
    );
  }
  const deletions = plan.jobs.filter((j) => j.deleteCommand !== undefined && j.inJobsYaml);
  if (deletions.length > 0)
    out.push(
      `${plan.entries.length > 0 ? '3' : '1'}. Then delete the old hand-written objects (these commands leave the jobs-api ones alone). If the load said an object of the same name already exists, delete it first and load again:`,
      '',
      '```',
      ...deletions.map((j) => j.deleteCommand ?? ''),
      '```',
      '',
    );
  const oneOff = plan.jobs.filter((j) => j.jobType === 'one-off' && j.entry !== null);
  if (oneOff.length > 0)
    out.push(
      '`toolforge jobs load` does not create one-off jobs. If one of these must run again, start it with:',
      '',
      '```',
      ...oneOff.map((j) => runCommand(j.entry as LoadEntry)),
      '```',
      '',
    );
  const held = plan.jobs.filter((j) => j.entry !== null && !j.inJobsYaml && j.jobType !== 'one-off');
  if (held.length > 0)
    out.push(
      'These entries are not in `jobs.yaml` yet: fix what is listed above for them, then add them to the file and load it again:',
      '',
      '```yaml',
      renderJobsYaml({ tool: plan.tool, entries: held.map((j) => j.entry as LoadEntry) }).trimEnd(),
      '```',
      '',
    );
  const changes = notesSection(plan, false);
  if (changes.length > 0) out.push('## Other differences, for your information', '', ...changes, '');
  return `${out.join('\n')}\n`;
}

/** A tool name as one safe path segment (tool names are DNS labels; anything else is escaped). */
export function toolFolder(tool: string): string {
  const folder = encodeURIComponent(tool);
  return folder.startsWith('.') ? `%2E${folder.slice(1)}` : folder;
}

/** Tools ranked: most jobs to migrate first, then most needing attention, then by name. */
export function rankTools<T extends Pick<ToolPlan, 'tool' | 'jobs' | 'needsAttention'>>(plans: readonly T[]): T[] {
  return [...plans].sort(
    (a, b) =>
      b.jobs.length - a.jobs.length ||
      b.needsAttention - a.needsAttention ||
      (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0),
  );
}

export interface IndexRow {
  tool: string;
  jobs: number;
  needsAttention: number;
  inJobsYaml: number;
  handWritten: number;
  editedDirectly: number;
  notInStorage: number;
}

export function indexRow(plan: ToolPlan): IndexRow {
  const by = (r: JobMigration['reason'][]) => plan.jobs.filter((j) => r.includes(j.reason)).length;
  return {
    tool: plan.tool,
    jobs: plan.jobs.length,
    needsAttention: plan.needsAttention,
    inJobsYaml: plan.entries.length,
    handWritten: by(['hand-written']),
    editedDirectly: by(['edited-directly']),
    notInStorage: by(['not-in-storage', 'ignored']),
  };
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const INDEX_COLUMNS: readonly (keyof IndexRow)[] = [
  'tool',
  'jobs',
  'needsAttention',
  'inJobsYaml',
  'handWritten',
  'editedDirectly',
  'notInStorage',
];

export function renderIndexCsv(plans: readonly ToolPlan[]): string {
  const rows = rankTools(plans).map(indexRow);
  const lines = [INDEX_COLUMNS.join(','), ...rows.map((r) => INDEX_COLUMNS.map((c) => csvField(r[c])).join(','))];
  return `${lines.join('\n')}\n`;
}

export function renderIndexMarkdown(plans: readonly ToolPlan[], options: MessageOptions): string {
  const ranked = rankTools(plans).filter((p) => p.jobs.length > 0);
  const total = ranked.reduce((n, p) => n + p.jobs.length, 0);
  const attention = ranked.reduce((n, p) => n + p.needsAttention, 0);
  const lines = [
    `# Jobs to move to the jobs API by ${options.deadline}`,
    '',
    `${ranked.length} tools, ${total} jobs, ${attention} needing attention. Announcement: ${options.announcementUrl}`,
    '',
    '| Tool | Jobs | Needs attention | In jobs.yaml | Hand-written | Edited directly | Not in storage | Message |',
    '|---|---|---|---|---|---|---|---|',
    ...ranked.map((p) => {
      const r = indexRow(p);
      return `| \`${r.tool}\` | ${r.jobs} | ${r.needsAttention} | ${r.inJobsYaml} | ${r.handWritten} | ${r.editedDirectly} | ${r.notInStorage} | [message](${toolFolder(r.tool)}/message.md) |`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}
