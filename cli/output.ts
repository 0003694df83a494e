/**
 * What the CLI prints: aligned tables and `label: value` records for people, the API's JSON as it
 * came for scripts (`--json`), and `error:` / `warning:` lines on stderr. Widths are measured in
 * terminal columns, so Chinese names (two columns per character) line up.
 */

/** Where text goes: `process.stdout`/`process.stderr`, or a capturing sink in tests. */
export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** Where prompts read from: `process.stdin`, or a stream in tests. */
export interface InputSource extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** The process surroundings a CLI run sees; injected so that tests run it in-process. */
export interface Io {
  stdout: TextSink;
  stderr: TextSink;
  env: Record<string, string | undefined>;
  stdin: InputSource;
}

// ---------------------------------------------------------------------------------------------
// Display width

/** Unicode ranges a terminal draws two columns wide (East Asian Wide and Fullwidth, UAX #11). */
const WIDE: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], // Hangul Jamo initial consonants
  [0x2e80, 0x303e], // CJK radicals, Kangxi radicals, CJK symbols and punctuation (incl. 、。)
  [0x3041, 0x33ff], // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, enclosed CJK
  [0x3400, 0x4dbf], // CJK unified ideographs extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth ASCII and punctuation (（）：，)
  [0xffe0, 0xffe6], // fullwidth signs
  [0x1f300, 0x1f64f], // pictographs and emoticons
  [0x1f900, 0x1f9ff], // supplemental pictographs
  [0x20000, 0x2fffd], // CJK extensions B–F
  [0x30000, 0x3fffd], // CJK extension G and later
];

/** Code points that take no column: combining marks, zero-width joiners, variation selectors. */
const ZERO: ReadonlyArray<readonly [number, number]> = [
  [0x0300, 0x036f],
  [0x1ab0, 0x1aff],
  [0x1dc0, 0x1dff],
  [0x200b, 0x200f],
  [0x20d0, 0x20ff],
  [0xfe00, 0xfe0f],
  [0xfe20, 0xfe2f],
];

const inRanges = (cp: number, ranges: ReadonlyArray<readonly [number, number]>): boolean =>
  ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

const ANSI = /\u001b\[[0-9;]*m/g;

/** Terminal columns `text` takes: CJK and fullwidth characters count 2, combining marks 0, ANSI colour codes 0. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text.replace(ANSI, '')) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || inRanges(cp, ZERO)) continue;
    width += inRanges(cp, WIDE) ? 2 : 1;
  }
  return width;
}

/** `text` followed by spaces up to `width` columns (unchanged when already as wide). */
export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

// ---------------------------------------------------------------------------------------------
// Colour

export type Colour = 'red' | 'green' | 'yellow' | 'dim' | 'bold';
const SGR: Record<Colour, string> = { red: '31', green: '32', yellow: '33', dim: '2', bold: '1' };

/** `text` wrapped in an ANSI colour when `enabled`. */
export const paint = (text: string, colour: Colour | undefined, enabled: boolean): string =>
  enabled && colour && text ? `\u001b[${SGR[colour]}m${text}\u001b[0m` : text;

/** The colour a status word is shown in: good/active green, revoked/rejected red, hold/pending yellow. */
export function statusColour(status: string): Colour | undefined {
  switch (status) {
    case 'good':
    case 'active':
    case 'done':
      return 'green';
    case 'revoked':
    case 'rejected':
    case 'failed':
    case 'expired':
      return 'red';
    case 'hold':
    case 'pending':
    case 'retired':
      return 'yellow';
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Tables and records

/** One column of a table: its header and how a row's cell is read (nullish prints `-`). */
export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
  colour?: (cell: string, row: T) => Colour | undefined;
}

const cellText = (value: unknown): string => {
  if (value === undefined || value === null || value === '') return '-';
  if (Array.isArray(value)) return value.length ? value.map(cellText).join(',') : '-';
  // Tabs and newlines would break the alignment; a cell is one line.
  return String(value).replace(/[\t\r\n]+/g, ' ');
};

/**
 * An aligned table: an upper-case header line, then one line per row; columns separated by two
 * spaces, no trailing spaces. Colours are applied after padding so they do not disturb widths.
 */
export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[], options: { colour?: boolean } = {}): string {
  const header = columns.map((c) => c.header.toUpperCase());
  const cells = rows.map((row) => columns.map((c) => cellText(c.value(row))));
  const widths = header.map((h, i) => Math.max(displayWidth(h), ...cells.map((r) => displayWidth(r[i]))));
  const line = (texts: string[], colours: (Colour | undefined)[]): string =>
    texts
      .map((t, i) => {
        const last = i === texts.length - 1;
        const pad = last ? '' : ' '.repeat(widths[i] - displayWidth(t));
        return paint(t, colours[i], options.colour ?? false) + pad;
      })
      .join('  ');
  const out = [line(header, header.map(() => undefined))];
  cells.forEach((r, n) => out.push(line(r, columns.map((c, i) => c.colour?.(r[i], rows[n])))));
  return out.join('\n') + '\n';
}

/** Time as tables show it: `2027-11-25 13:04Z` (UTC, to the minute); other text unchanged. */
export function shortTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return value === undefined || value === null ? undefined : String(value);
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z$/.exec(value);
  return m ? `${m[1]} ${m[2]}Z` : value;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): boolean => v === null || v === undefined || typeof v !== 'object';

/**
 * A record as aligned `label: value` lines. Scalars print on their line, lists of scalars joined with
 * `, `, nested objects and lists of objects indented below their label. Multi-line text (PEM) is
 * better printed separately by the caller.
 */
export function renderRecord(record: Record<string, unknown>, indent = 0): string {
  const entries = Object.entries(record).filter(([, v]) => v !== undefined);
  const labelWidth = Math.max(0, ...entries.map(([k]) => displayWidth(k) + 1));
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [key, value] of entries) {
    const label = padEnd(`${key}:`, labelWidth);
    if (isScalar(value)) {
      out += `${pad}${label}  ${cellText(value)}\n`;
    } else if (Array.isArray(value) && value.every(isScalar)) {
      out += `${pad}${label}  ${value.length ? value.map(cellText).join(', ') : '-'}\n`;
    } else if (Array.isArray(value)) {
      out += `${pad}${key}:\n`;
      for (const item of value) {
        const body = isPlainObject(item) ? renderRecord(item, indent + 4) : `${' '.repeat(indent + 4)}${cellText(item)}\n`;
        // "  - " marks where each item starts; its first line takes the dash's place.
        out += `${pad}  - ${body.slice(indent + 4)}`;
      }
    } else {
      out += `${pad}${key}:\n${renderRecord(value as Record<string, unknown>, indent + 2)}`;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Printing for one CLI run: knows `--json` and whether colour is wanted on each stream. */
export class Output {
  readonly colourOut: boolean;
  readonly colourErr: boolean;

  /**
   * @param options.json machine output: {@link Output.data} prints JSON, tables are not printed.
   * @param options.colour `false` with `--no-color`; colour is also off when the stream is not a
   *   terminal or `NO_COLOR` is set (https://no-color.org).
   */
  constructor(
    readonly io: Io,
    readonly options: { json: boolean; colour: boolean },
  ) {
    const allowed = options.colour && !io.env.NO_COLOR;
    this.colourOut = allowed && io.stdout.isTTY === true;
    this.colourErr = allowed && io.stderr.isTTY === true;
  }

  get json(): boolean {
    return this.options.json;
  }

  /** Prints `value` as indented JSON on stdout. */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Prints text on stdout, adding the final newline when missing. */
  print(text = ''): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Prints a table, or `empty` (on stdout) when there are no rows. */
  table<T>(columns: readonly Column<T>[], rows: readonly T[], empty: string): void {
    if (rows.length === 0) this.print(empty);
    else this.io.stdout.write(renderTable(columns, rows, { colour: this.colourOut }));
  }

  /** Prints a record as aligned `label: value` lines. */
  record(record: Record<string, unknown>): void {
    this.io.stdout.write(renderRecord(record));
  }

  /** A status word in its colour (stdout). */
  status(status: string): string {
    return paint(status, statusColour(status), this.colourOut);
  }

  /** `warning: text` on stderr. */
  warn(text: string): void {
    this.io.stderr.write(`${paint('warning:', 'yellow', this.colourErr)} ${text}\n`);
  }

  /** `error: text` on stderr. */
  error(text: string): void {
    this.io.stderr.write(`${paint('error:', 'red', this.colourErr)} ${text}\n`);
  }

  /** A note for people on stderr, so that stdout stays the answer itself. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }
}
