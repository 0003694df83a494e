import { describe, expect, it } from 'vitest';
import { displayWidth, Output, padEnd, paint, renderRecord, renderTable, shortTime, type Column } from '../../cli/output.ts';
import { Capture, fakeStdin } from './cli-fake-server.ts';

describe('displayWidth', () => {
  it('counts ASCII as one column each', () => {
    expect(displayWidth('yuhu-t2')).toBe(7);
    expect(displayWidth('')).toBe(0);
  });

  it('counts CJK ideographs, CJK punctuation and fullwidth forms as two', () => {
    expect(displayWidth('湘潭市')).toBe(6);
    expect(displayWidth('雨湖区人民政府')).toBe(14);
    expect(displayWidth('湘潭市（城区）')).toBe(14); // fullwidth parentheses
    expect(displayWidth('政府、法院。')).toBe(12);
    expect(displayWidth('CN=张三')).toBe(7);
    expect(displayWidth('𠀋')).toBe(2); // extension B, outside the BMP
  });

  it('counts combining marks, zero-width characters and ANSI colour codes as nothing', () => {
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('a\u200bb')).toBe(2);
    expect(displayWidth('\u001b[31mrevoked\u001b[0m')).toBe(7);
  });

  it('pads to a column width', () => {
    expect(padEnd('湘潭', 6)).toBe('湘潭  ');
    expect(padEnd('abc', 2)).toBe('abc');
  });
});

describe('renderTable', () => {
  interface Row {
    id: string;
    name: string;
    status: string | null;
  }
  const columns: Column<Row>[] = [
    { header: 'id', value: (r) => r.id },
    { header: 'name', value: (r) => r.name },
    { header: 'status', value: (r) => r.status, colour: (s) => (s === 'revoked' ? 'red' : undefined) },
  ];
  const rows: Row[] = [
    { id: 'root', name: '湘潭市信任根', status: 'active' },
    { id: 'yuhu-t2', name: 'Yuhu t2', status: 'revoked' },
    { id: 'xiangtan', name: '湘潭市', status: null },
  ];

  it('aligns columns by display width, with Chinese text two columns per character', () => {
    expect(renderTable(columns, rows)).toBe(
      [
        'ID        NAME          STATUS',
        'root      湘潭市信任根  active',
        'yuhu-t2   Yuhu t2       revoked',
        'xiangtan  湘潭市        -',
        '',
      ].join('\n'),
    );
    // Every STATUS cell starts at the same terminal column.
    const lines = renderTable(columns, rows).trimEnd().split('\n');
    const statusColumn = lines.map((l) => displayWidth(l.slice(0, l.search(/(active|revoked|-|STATUS)$/))));
    expect(new Set(statusColumn).size).toBe(1);
  });

  it('colours after padding, so colour does not shift columns', () => {
    const coloured = renderTable(columns, rows, { colour: true }).split('\n');
    expect(coloured[2]).toBe('yuhu-t2   Yuhu t2       \u001b[31mrevoked\u001b[0m');
    expect(coloured[1]).toBe('root      湘潭市信任根  active');
  });

  it('keeps a cell on one line and joins lists', () => {
    const t = renderTable<{ a: unknown }>([{ header: 'a', value: (r) => r.a }], [{ a: 'x\ny\tz' }, { a: ['d1', 'd2'] }, { a: [] }]);
    expect(t).toBe('A\nx y z\nd1,d2\n-\n');
  });
});

describe('renderRecord', () => {
  it('aligns labels and nests objects and lists', () => {
    const text = renderRecord({
      id: 'yuhu-t2',
      name: '雨湖区 t2 签发 CA',
      policies: ['2.25.1.1', '2.25.1.2'],
      children: [],
      parent: null,
      urls: { crl: 'http://x/crl/yuhu-t2.crl', ocsp: 'http://x/ocsp' },
      entries: [{ serial: '0a', reason: 'keyCompromise' }],
    });
    expect(text).toBe(
      [
        'id:        yuhu-t2',
        'name:      雨湖区 t2 签发 CA',
        'policies:  2.25.1.1, 2.25.1.2',
        'children:  -',
        'parent:    -',
        'urls:',
        '  crl:   http://x/crl/yuhu-t2.crl',
        '  ocsp:  http://x/ocsp',
        'entries:',
        '  - serial:  0a',
        '    reason:  keyCompromise',
        '',
      ].join('\n'),
    );
  });
});

describe('shortTime', () => {
  it('shows ISO UTC times to the minute and leaves other text alone', () => {
    expect(shortTime('2027-11-25T13:04:59.123Z')).toBe('2027-11-25 13:04Z');
    expect(shortTime('2027-11-25T13:04Z')).toBe('2027-11-25 13:04Z');
    expect(shortTime('soon')).toBe('soon');
    expect(shortTime(null)).toBeUndefined();
  });
});

describe('Output colour', () => {
  const io = (tty: boolean, env: Record<string, string> = {}) => {
    const stdout = new Capture();
    const stderr = new Capture();
    stdout.isTTY = tty;
    stderr.isTTY = tty;
    return { stdout, stderr, env, stdin: fakeStdin() };
  };

  it('colours only on a terminal, without NO_COLOR and without --no-color', () => {
    expect(new Output(io(true), { json: false, colour: true }).colourOut).toBe(true);
    expect(new Output(io(false), { json: false, colour: true }).colourOut).toBe(false);
    expect(new Output(io(true, { NO_COLOR: '1' }), { json: false, colour: true }).colourOut).toBe(false);
    expect(new Output(io(true), { json: false, colour: false }).colourOut).toBe(false);
  });

  it('writes error and warning lines on stderr', () => {
    const streams = io(true);
    const out = new Output(streams, { json: false, colour: true });
    out.error('Not found: no CA nowhere');
    out.warn('careful');
    expect(streams.stderr.text).toBe(`${paint('error:', 'red', true)} Not found: no CA nowhere\n${paint('warning:', 'yellow', true)} careful\n`);
    expect(streams.stdout.text).toBe('');
  });
});
