// Against the local demo, each command acts as the demo principal of its role.
import { afterAll, describe, expect, it } from 'vitest';
import { resolveToken } from '../../cli/api-client.ts';
import { TempDir } from '../helpers/openssl.ts';

const tmp = new TempDir();
afterAll(() => tmp.cleanup());

describe('demo token by role', () => {
  tmp.file('demo-admin.token', 'tca_admin_token_value_0123456789\n');
  tmp.file('demo-officer.token', 'tca_officer_token_value_012345678\n');
  const env = { TIERCA_DATA: tmp.path };
  const local = new URL('http://127.0.0.1:8080');

  it('prefers the officer token for officer commands and falls back to the admin token', () => {
    expect(resolveToken({ env, serverUrl: local, demoRole: 'officer' })).toBe('tca_officer_token_value_012345678');
    expect(resolveToken({ env, serverUrl: local, demoRole: 'auditor' })).toBe('tca_admin_token_value_0123456789');
    expect(resolveToken({ env, serverUrl: local })).toBe('tca_admin_token_value_0123456789');
  });

  it('never uses a demo token for a remote server', () => {
    expect(() => resolveToken({ env, serverUrl: new URL('http://10.1.2.3:8080'), demoRole: 'officer' })).toThrow(/no API token/);
  });
});
