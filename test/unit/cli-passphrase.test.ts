import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/cli-error.ts';
import { promptHidden, readKeystorePassphrase, readPassphraseFile, readPkcs12Passphrase } from '../../cli/passphrase.ts';
import { Capture, fakeStdin } from './cli-fake-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-pass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
};

const failure = async (p: Promise<unknown>): Promise<CliError> => {
  try {
    await p;
  } catch (err) {
    return err as CliError;
  }
  throw new Error('expected a failure');
};

describe('readPassphraseFile', () => {
  it('drops one final line break and keeps everything else', () => {
    expect(readPassphraseFile(file('a', 'secret\n'), '--passphrase-file')).toBe('secret');
    expect(readPassphraseFile(file('b', 'secret\r\n'), '--passphrase-file')).toBe('secret');
    expect(readPassphraseFile(file('c', ' two words \n\n'), '--passphrase-file')).toBe(' two words \n');
    expect(readPassphraseFile(file('d', '口令很长的密码'), '--passphrase-file')).toBe('口令很长的密码');
  });

  it('refuses an empty or missing file with exit 2, naming the option', async () => {
    const empty = await failure(Promise.resolve().then(() => readPassphraseFile(file('e', '\n'), '--p12-passphrase-file')));
    expect([empty.exitCode, empty.message]).toEqual([2, `--p12-passphrase-file: ${join(dir, 'e')} is empty`]);
    const missing = await failure(Promise.resolve().then(() => readPassphraseFile(join(dir, 'none'), '--passphrase-file')));
    expect([missing.exitCode, missing.message]).toEqual([2, `--passphrase-file: cannot read ${join(dir, 'none')}: no such file`]);
  });
});

describe('promptHidden', () => {
  const prompt = async (typed: string[]) => {
    const stdin = fakeStdin(true);
    const stderr = new Capture();
    const result = promptHidden({ stdin, stderr, prompt: 'Passphrase: ' });
    for (const t of typed) stdin.write(t);
    return { result, stdin, stderr };
  };

  it('reads a line with echo off and restores the terminal', async () => {
    const { result, stdin, stderr } = await prompt(['hun', 'ter2\r']);
    await expect(result).resolves.toBe('hunter2');
    expect(stderr.text).toBe('Passphrase: \n'); // nothing typed is shown
    expect(stdin.rawModes).toEqual([true, false]);
  });

  it('edits: backspace, Ctrl-U, cursor keys ignored', async () => {
    const { result } = await prompt(['abcx\u007f', '\u001b[D', 'zz\u0015', '密码d\r']);
    await expect(result).resolves.toBe('密码d');
  });

  it('Ctrl-C aborts with exit 130, Ctrl-D on an empty line and end of input with exit 2', async () => {
    const c = await prompt(['ab\u0003']);
    expect((await failure(c.result)).exitCode).toBe(130);
    expect(c.stdin.rawModes).toEqual([true, false]);
    const d = await prompt(['\u0004']);
    expect((await failure(d.result)).exitCode).toBe(2);
    const stdin = fakeStdin(true);
    const ended = promptHidden({ stdin, stderr: new Capture(), prompt: '' });
    stdin.end();
    expect((await failure(ended)).message).toBe('no passphrase: input ended at the prompt');
  });
});

describe('readKeystorePassphrase', () => {
  const base = { stdin: fakeStdin(false), stderr: new Capture() };

  it('takes --passphrase-file before TIERCA_PASSPHRASE', async () => {
    const f = file('ks', 'from-file-passphrase\n');
    await expect(readKeystorePassphrase({ ...base, env: { TIERCA_PASSPHRASE: 'from-env' }, file: f })).resolves.toBe('from-file-passphrase');
    await expect(readKeystorePassphrase({ ...base, env: { TIERCA_PASSPHRASE: 'from-env' } })).resolves.toBe('from-env');
  });

  it('without either and without a terminal: exit 2 saying what to do', async () => {
    const err = await failure(readKeystorePassphrase({ ...base, env: {} }));
    expect([err.exitCode, err.message]).toEqual([
      2,
      'no keystore passphrase: set TIERCA_PASSPHRASE or give --passphrase-file <file> (there is no terminal to ask on)',
    ]);
  });

  it('on a terminal asks, twice for a new passphrase', async () => {
    const stdin = fakeStdin(true);
    const stderr = new Capture();
    stdin.write('long enough phrase\r');
    stdin.write('long enough phrase\r');
    await expect(readKeystorePassphrase({ env: {}, stdin, stderr, confirm: true })).resolves.toBe('long enough phrase');
    expect(stderr.text).toBe('New keystore passphrase: \nRepeat the passphrase: \n');
  });

  it('refuses a confirmation that differs, and an empty answer', async () => {
    const stdin = fakeStdin(true);
    stdin.write('one\rtwo\r');
    expect((await failure(readKeystorePassphrase({ env: {}, stdin, stderr: new Capture(), confirm: true }))).message).toBe('the two passphrases differ');
    const empty = fakeStdin(true);
    empty.write('\r');
    expect((await failure(readKeystorePassphrase({ env: {}, stdin: empty, stderr: new Capture() }))).message).toBe('the keystore passphrase may not be empty');
  });
});

describe('readPkcs12Passphrase', () => {
  it('leaves the passphrase to the server without a file or a terminal, or on an empty answer', async () => {
    await expect(readPkcs12Passphrase({ stdin: fakeStdin(false), stderr: new Capture() })).resolves.toBeUndefined();
    const stdin = fakeStdin(true);
    stdin.write('\r');
    await expect(readPkcs12Passphrase({ stdin, stderr: new Capture() })).resolves.toBeUndefined();
  });
});
