/** Small helpers for the CLI's human output and argument checks. */
import { UsageError, type ParsedArgs } from './types.js';

/** `key: value` lines, keys padded to one column. */
export function describe(entries: ReadonlyArray<[string, unknown]>): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries
    .map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${Array.isArray(value) ? value.join(' ') || '-' : value === null || value === undefined || value === '' ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean)}`)
    .join('\n');
}

/** A plain text table with a header row. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function stringValue(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function listValue(args: ParsedArgs, name: string): string[] | undefined {
  const value = args.values[name];
  return Array.isArray(value) ? value : undefined;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

export function requireString(args: ParsedArgs, name: string): string {
  const value = stringValue(args, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

/** `--limit` / `--offset` as whole numbers within bounds. */
export function pageArgs(args: ParsedArgs): { limit: number; offset: number } {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const raw = stringValue(args, name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
    return Number(raw);
  };
  return { limit: number('limit', 50, 1, 200), offset: number('offset', 0, 0, 1_000_000_000) };
}

export const pageOptions = {
  limit: { type: 'string', valueName: 'N', description: 'How many to show (1-200, default 50)' },
  offset: { type: 'string', valueName: 'N', description: 'How many to skip (default 0)' },
} as const;
