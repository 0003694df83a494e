import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { EXAMPLE_CONFIG, loadConfigFile } from '../../server/config/load-config.ts';

/** The example config as plain data, for tests that change a field. */
export function exampleConfigData(): Record<string, any> {
  return parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, any>;
}

/** The tier policy OIDs of the example config (RFC 5612's documentation arc: 1.3.6.1.4.1.32473.1.<n>). */
export const EXAMPLE_TIER_OIDS: Readonly<Record<string, string>> = Object.fromEntries(
  [...loadConfigFile(EXAMPLE_CONFIG).tiers.values()].map((t) => [t.id, t.oid]),
);
