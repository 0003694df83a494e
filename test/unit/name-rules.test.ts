// pki/name-rules.ts: each class of character a name may not hold, with its exact reason; what real
// names need (Chinese, non-BMP, spaces inside) passes; limits are in characters per RFC 5280 App. A.
import { describe, expect, it } from 'vitest';
import { checkNameAttribute, NAME_ATTRIBUTE_MAX, nameAttributeProblem, nameTextProblem } from '../../pki/name-rules.ts';
import { PkiError } from '../../pki/pki-error.ts';

describe('nameTextProblem', () => {
  it('accepts real names: Chinese, non-BMP CJK Extension B, Latin with accents in NFC, inner spaces', () => {
    for (const name of ['湘潭市人民政府', '𠮷野家 网关', '𪚥', 'Zhāng Sān', 'gw-01.yuhu.xiangtan.intranet', "O'Brien (IT)", 'a']) {
      expect([name, nameTextProblem(name, 64)]).toEqual([name, undefined]);
    }
  });

  const cases: [string, string, string][] = [
    ['C0 NUL', 'ab\u0000c', 'control character U+0000 at position 3'],
    ['C0 CR', 'ab\r', 'control character U+000D at position 3'],
    ['C0 LF', '\nab', 'control character U+000A at position 1'],
    ['C0 ESC', 'x\u001b[31m', 'control character U+001B at position 2'],
    ['C0 TAB', 'a\tb', 'control character U+0009 at position 2'],
    ['DEL', 'a\u007f', 'control character U+007F at position 2'],
    ['C1 NEL', 'a\u0085', 'control character U+0085 at position 2'],
    ['C1 CSI', '\u009b', 'control character U+009B at position 1'],
    ['line separator', 'a\u2028b', 'line or paragraph separator U+2028 at position 2'],
    ['paragraph separator', 'a\u2029', 'line or paragraph separator U+2029 at position 2'],
    ['RLO', 'gnp.\u202eexe', 'bidirectional control character U+202E at position 5'],
    ['LRE', '\u202aa', 'bidirectional control character U+202A at position 1'],
    ['PDF', 'a\u202c', 'bidirectional control character U+202C at position 2'],
    ['LRI', 'a\u2066b', 'bidirectional control character U+2066 at position 2'],
    ['PDI', 'a\u2069', 'bidirectional control character U+2069 at position 2'],
    ['ZWSP', 'ad\u200bmin', 'invisible format character U+200B at position 3'],
    ['ZWNJ', 'a\u200c', 'invisible format character U+200C at position 2'],
    ['ZWJ', 'a\u200d', 'invisible format character U+200D at position 2'],
    ['RLM', 'a\u200f', 'invisible format character U+200F at position 2'],
    ['BOM', '\ufeffadmin', 'invisible format character U+FEFF at position 1'],
    ['word joiner', 'a\u2060b', 'invisible format character U+2060 at position 2'],
    ['soft hyphen', 'ad\u00admin', 'invisible format character U+00AD at position 3'],
    ['Arabic letter mark', 'a\u061c', 'invisible format character U+061C at position 2'],
    ['tag character (non-BMP Cf)', '𠮷\u{e0041}', 'invisible format character U+E0041 at position 2'],
    ['lone high surrogate', 'ab\ud800', 'lone surrogate U+D800 at position 3'],
    ['lone low surrogate', '\udc00ab', 'lone surrogate U+DC00 at position 1'],
    ['surrogates in the wrong order', '\udc00\ud800', 'lone surrogate U+DC00 at position 1'],
    ['private use', 'a\ue000', 'private-use or unassigned code point U+E000 at position 2'],
    ['noncharacter', 'a\uffff', 'private-use or unassigned code point U+FFFF at position 2'],
    ['plane 15 private use', '\u{f0000}', 'private-use or unassigned code point U+F0000 at position 1'],
    ['not NFC (e + combining acute)', 'Ze\u0301', 'not in Unicode normalization form C (NFC)'],
    ['not NFC (Hangul jamo)', '\u1100\u1161', 'not in Unicode normalization form C (NFC)'],
    ['leading space', ' admin', 'white space at the start or end'],
    ['trailing ideographic space', '网关\u3000', 'white space at the start or end'],
    ['empty', '', 'empty'],
  ];
  for (const [what, value, reason] of cases) {
    it(`refuses ${what}`, () => {
      expect(nameTextProblem(value, 64)).toBe(reason);
    });
  }

  it('refuses what is not a string', () => {
    expect([null, 7, ['a'], { a: 1 }].map((v) => nameTextProblem(v, 64))).toEqual(['not a string', 'not a string', 'not a string', 'not a string']);
  });

  it('counts characters (code points), not UTF-16 units or UTF-8 bytes', () => {
    expect(nameTextProblem('𠮷'.repeat(64), 64)).toBeUndefined(); // 128 UTF-16 units, 256 UTF-8 bytes
    expect(nameTextProblem('𠮷'.repeat(65), 64)).toBe('longer than 64 characters (65)');
    expect(nameTextProblem('湘'.repeat(64), 64)).toBeUndefined();
    expect(nameTextProblem('a'.repeat(65), 64)).toBe('longer than 64 characters (65)');
  });
});

describe('per attribute (RFC 5280 Appendix A.1 upper bounds)', () => {
  it('has the bounds of RFC 5280', () => {
    expect(NAME_ATTRIBUTE_MAX).toEqual({ C: 2, ST: 128, L: 128, O: 64, OU: 64, CN: 64, serialNumber: 64, emailAddress: 255 });
  });
  it('refuses one character over and accepts the bound', () => {
    for (const [type, max] of Object.entries(NAME_ATTRIBUTE_MAX) as [keyof typeof NAME_ATTRIBUTE_MAX, number][]) {
      expect([type, nameAttributeProblem(type, 'x'.repeat(max))]).toEqual([type, undefined]);
      expect([type, nameAttributeProblem(type, 'x'.repeat(max + 1))]).toEqual([type, `longer than ${max} characters (${max + 1})`]);
    }
  });
  it('checkNameAttribute throws invalid-argument naming the attribute', () => {
    expect(() => checkNameAttribute('CN', 'a\u0000')).toThrow(new PkiError('invalid-argument', 'name attribute CN: control character U+0000 at position 2'));
    expect(() => checkNameAttribute('O', '湘潭市人民政府')).not.toThrow();
  });
});
