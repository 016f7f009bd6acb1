/** Whether a path has something `PurePosixPath` would change: "//", a "." part, a trailing slash, or nothing. */
const NOT_NORMAL = /\/\/|(^|\/)\.(\/|$)|.\/$|^$/;

/** `str(PurePosixPath(p))`: repeated and trailing slashes and "." parts dropped, "" becomes ".". */
export function normalizePosixPath(path: string): string {
  if (!NOT_NORMAL.test(path)) return path;
  const root = path.startsWith('//') && !path.startsWith('///') ? '//' : path.startsWith('/') ? '/' : '';
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const joined = `${root}${parts.join('/')}`;
  return joined === '' ? '.' : joined;
}

export function isAbsolutePosixPath(path: string): boolean {
  return path.startsWith('/');
}

/** `resolve_filelog_path`: no path → home/default, absolute → itself, relative → home/path. */
export function resolveFilelogPath(path: string | null | undefined, home: string, fallback: string): string {
  if (path === null || path === undefined) return normalizePosixPath(`${home}/${fallback}`);
  const normalized = normalizePosixPath(path);
  return isAbsolutePosixPath(normalized) ? normalized : normalizePosixPath(`${home}/${normalized}`);
}
