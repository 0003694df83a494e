import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { EXAMPLE_CONFIG } from '../../server/config/load-config.ts';

/** The example config as plain data, for tests that change a field. */
export function exampleConfigData(): Record<string, any> {
  return parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, any>;
}
