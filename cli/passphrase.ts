/**
 * Passphrases for the CLI: the keystore passphrase of `init` and `serve`, and PKCS#12 passphrases.
 * They come from a file, the environment or a prompt with echo off — never from a command-line
 * value, which `ps` and shell history would keep.
 */
import { readFileSync } from 'node:fs';
import { CliError, EXIT } from './cli-error.ts';
import type { InputSource, TextSink } from './output.ts';

/**
 * The content of a passphrase file, less one final line break (so that `echo secret > file` works);
 * every other character, spaces included, is part of the passphrase.
 *
 * @param option the option that named the file, for messages (e.g. `--passphrase-file`).
 * @throws CliError exit 2 when the file cannot be read or holds nothing.
 */
export function readPassphraseFile(path: string, option: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${option}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`, EXIT.usage);
  }
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase === '') throw new CliError(`${option}: ${path} is empty`, EXIT.usage);
  return passphrase;
}

// Cursor keys and other terminal escape sequences typed at the prompt are not part of a passphrase.
const ESCAPE_SEQUENCE = /\u001b\[[0-9;]*[A-Za-z~]|\u001b./g;

/**
 * Reads one line from a terminal with echo off: the prompt goes to `stderr`, nothing typed is shown.
 * Backspace deletes, Ctrl-U clears, Enter ends, Ctrl-C aborts (exit 130), Ctrl-D on an empty line
 * or the end of input aborts (exit 2).
 */
export function promptHidden({ stdin, stderr, prompt }: { stdin: InputSource & { isRaw?: boolean }; stderr: TextSink; prompt: string }): Promise<string> {
  return new Promise((resolvePrompt, reject) => {
    const wasRaw = stdin.isRaw ?? false;
    let value = '';
    const finish = (outcome: () => void) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode?.(wasRaw);
      stdin.pause();
      stderr.write('\n');
      outcome();
    };
    const onEnd = () => finish(() => reject(new CliError('no passphrase: input ended at the prompt', EXIT.usage)));
    const onData = (chunk: Buffer | string) => {
      const chars = Array.from(chunk.toString().replace(ESCAPE_SEQUENCE, ''));
      for (const [i, ch] of chars.entries()) {
        if (ch === '\r' || ch === '\n') {
          // Typed ahead or pasted with the line: leave the rest for the next prompt.
          const rest = chars.slice(i + 1).join('').replace(/^\n/, '');
          return finish(() => {
            if (rest) stdin.unshift(Buffer.from(rest));
            resolvePrompt(value);
          });
        }
        if (ch === '\u0003') return finish(() => reject(new CliError('interrupted', EXIT.interrupted)));
        if (ch === '\u0004') {
          if (value === '') return finish(() => reject(new CliError('no passphrase: input ended at the prompt', EXIT.usage)));
          return finish(() => resolvePrompt(value));
        }
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch >= ' ') value += ch;
      }
    };
    stderr.write(prompt);
    stdin.setRawMode?.(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

export interface KeystorePassphraseParams {
  /** Reads `TIERCA_PASSPHRASE`. */
  env: Record<string, string | undefined>;
  /** `--passphrase-file`. */
  file?: string;
  stdin: InputSource;
  stderr: TextSink;
  /** Ask twice and require both to match (a new passphrase, as `init` sets); default false. */
  confirm?: boolean;
}

/**
 * The keystore passphrase: `--passphrase-file`, else `TIERCA_PASSPHRASE`, else a prompt with echo
 * off when stdin is a terminal. The file comes first because an option given on this command line
 * is more deliberate than a variable left in the environment (as `--token-file` beats `TIERCA_TOKEN`).
 *
 * @throws CliError exit 2 when none of them is available (no terminal to ask on), the file is
 *   unusable, or the two entries of a confirmed prompt differ.
 */
export async function readKeystorePassphrase({ env, file, stdin, stderr, confirm = false }: KeystorePassphraseParams): Promise<string> {
  if (file) return readPassphraseFile(file, '--passphrase-file');
  if (env.TIERCA_PASSPHRASE) return env.TIERCA_PASSPHRASE;
  if (!stdin.isTTY) {
    throw new CliError('no keystore passphrase: set TIERCA_PASSPHRASE or give --passphrase-file <file> (there is no terminal to ask on)', EXIT.usage);
  }
  const first = await promptHidden({ stdin, stderr, prompt: confirm ? 'New keystore passphrase: ' : 'Keystore passphrase: ' });
  if (first === '') throw new CliError('the keystore passphrase may not be empty', EXIT.usage);
  if (confirm) {
    const again = await promptHidden({ stdin, stderr, prompt: 'Repeat the passphrase: ' });
    if (again !== first) throw new CliError('the two passphrases differ', EXIT.usage);
  }
  return first;
}

/**
 * The passphrase for a PKCS#12 the server makes (`cert issue --generate`): the file, else — on a
 * terminal — a prompt asked twice, else `undefined`, which lets the server generate one and return
 * it once. An empty first answer at the prompt also means "let the server generate it".
 *
 * @throws CliError exit 2 for an unusable file or two prompt entries that differ.
 */
export async function readPkcs12Passphrase({ file, stdin, stderr }: { file?: string; stdin: InputSource; stderr: TextSink }): Promise<string | undefined> {
  if (file) return readPassphraseFile(file, '--p12-passphrase-file');
  if (!stdin.isTTY) return undefined;
  const first = await promptHidden({ stdin, stderr, prompt: 'PKCS#12 passphrase (empty: let the server make one): ' });
  if (first === '') return undefined;
  const again = await promptHidden({ stdin, stderr, prompt: 'Repeat the PKCS#12 passphrase: ' });
  if (again !== first) throw new CliError('the two passphrases differ', EXIT.usage);
  return first;
}

/**
 * The user PIN of a PKCS#11 token (`init` and `serve` with PKCS#11 custody): from `--pin-file`, else
 * env TIERCA_PKCS11_PIN, else asked once on a terminal (a wrong PIN counts against the token's
 * lockout, so it is never retried). Never from a command-line value.
 */
export async function readTokenPin(p: { env: Record<string, string | undefined>; file?: string; stdin: InputSource & { isTTY?: boolean; isRaw?: boolean }; stderr: TextSink; tokenLabel: string }): Promise<string> {
  if (p.file) return readPassphraseFile(p.file, '--pin-file');
  if (p.env.TIERCA_PKCS11_PIN) return p.env.TIERCA_PKCS11_PIN;
  if (!p.stdin.isTTY) throw new CliError('the token PIN is needed: set TIERCA_PKCS11_PIN or use --pin-file', EXIT.usage);
  const pin = await promptHidden({ stdin: p.stdin, stderr: p.stderr, prompt: `PIN of token "${p.tokenLabel}": ` });
  if (!pin) throw new CliError('no PIN given', EXIT.usage);
  return pin;
}
