/**
 * Reads one domain out of a configuration file for `tierca ca add-domain`: the file is validated as
 * `tierca init` validates it (so a typo is caught on the operator's desk), and the domain is sent as
 * the file writes it; the server checks it again against the configuration it stores.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { usageError } from './cli-error.ts';
import { loadConfigFile } from '../server/config/load-config.ts';

/** The domain `slug` of config file `path`, as the API takes it (`POST /api/v1/domains`). */
export function readDomainFromConfig(path: string, slug: string): { slug: string; name: string; dnsSuffix: string; emailSuffix: string; ipRanges: string[]; organNames?: Record<string, string> } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw usageError(`--config: cannot read ${path}`);
  }
  loadConfigFile(path);
  const raw = (/\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text)) as { domains?: { slug: string; name: string; dnsSuffix: string; emailSuffix: string; ipRanges?: string[]; organNames?: Record<string, string> }[] };
  const d = raw.domains?.find((x) => x.slug === slug);
  if (!d) throw usageError(`--domain: ${path} names no domain ${slug}`);
  return { slug: d.slug, name: d.name, dnsSuffix: d.dnsSuffix, emailSuffix: d.emailSuffix, ipRanges: d.ipRanges ?? [], ...(d.organNames ? { organNames: d.organNames } : {}) };
}
