/** Where a command writes: the CLI's streams in production, strings in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin?: () => string;
  /** Whether stderr is a terminal: progress then updates one line instead of printing one every few seconds. */
  stderrIsTTY?: boolean;
}

export const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
};

/** Exit codes: 0 success, 1 the input had errors, 2 usage errors. */
export const EXIT = { ok: 0, inputErrors: 1, usage: 2 } as const;

/** Rows as left-aligned columns two spaces apart, one line each, without trailing blanks. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
