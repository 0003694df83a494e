/**
 * Challenge validation over the intranet (RFC 8555 §8.3 http-01, §8.4 dns-01). Names are resolved
 * by the configured resolvers (the intranet DNS); http-01 connects only when every address the name
 * has lies inside the ranges validation may reach (the domain's ipRanges and `acme.validationRanges`)
 * — a name that points anywhere else is refused before any connection is made — and then connects to
 * the checked address itself, so a second lookup cannot rebind it elsewhere. Redirects are not
 * followed (they could lead out of the ranges); the answer is read up to 4 KiB within 10 s.
 */
import { request } from 'node:http';
import { Resolver } from 'node:dns/promises';
import { lookup } from 'node:dns/promises';
import { ipsOutside, type IpRange } from '../../../pki/ip-range.ts';
import { AcmeProblem } from './acme-problem.ts';
import { dnsTxtValue } from './acme-jws.ts';

const HTTP_TIMEOUT_MS = 10_000;
const MAX_BODY = 4096;

export interface ValidationSettings {
  /** DNS servers (`host` or `host:port`); none: the system resolver. */
  resolvers: readonly string[];
  http01Port: number;
}

export interface ChallengeToValidate {
  type: 'http-01' | 'dns-01';
  /** The name validated (a wildcard's base name for dns-01). */
  name: string;
  token: string;
  keyAuthorization: string;
  /** The ranges this name's addresses must lie in. */
  ranges: readonly IpRange[];
}

export class ChallengeValidator {
  private readonly resolver: Resolver | null;

  constructor(private readonly settings: ValidationSettings) {
    if (settings.resolvers.length) {
      this.resolver = new Resolver({ timeout: 3000, tries: 2 });
      this.resolver.setServers([...settings.resolvers]);
    } else {
      this.resolver = null;
    }
  }

  /** Resolves and checks; throws an AcmeProblem saying why the challenge fails. */
  async validate(c: ChallengeToValidate): Promise<void> {
    if (c.type === 'dns-01') return this.dns01(c);
    return this.http01(c);
  }

  private async dns01(c: ChallengeToValidate): Promise<void> {
    const want = dnsTxtValue(c.keyAuthorization);
    const name = `_acme-challenge.${c.name}`;
    let records: string[][];
    try {
      records = this.resolver ? await this.resolver.resolveTxt(name) : await new Resolver().resolveTxt(name);
    } catch (err) {
      throw new AcmeProblem('dns', `no TXT record at ${name} (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
    }
    if (!records.some((chunks) => chunks.join('') === want)) {
      throw new AcmeProblem('incorrectResponse', `the TXT records at ${name} do not hold the expected value`);
    }
  }

  /** The addresses of `name`, A and AAAA. */
  private async addresses(name: string): Promise<string[]> {
    if (!this.resolver) {
      try {
        return (await lookup(name, { all: true })).map((a) => a.address);
      } catch (err) {
        throw new AcmeProblem('dns', `${name} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
      }
    }
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(name), this.resolver.resolve6(name)]);
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (!found.length) throw new AcmeProblem('dns', `${name} has no A or AAAA record at the intranet resolver`);
    return found;
  }

  private async http01(c: ChallengeToValidate): Promise<void> {
    const addresses = await this.addresses(c.name);
    const outside = ipsOutside(addresses, c.ranges);
    if (outside.length) {
      throw new AcmeProblem('rejectedIdentifier', `${c.name} resolves to ${outside.join(', ')}, outside the ranges validation may reach (${c.ranges.map((r) => r.cidr).join(', ') || 'none'}); nothing was contacted`);
    }
    const body = await httpGet(addresses[0], this.settings.http01Port, c.name, `/.well-known/acme-challenge/${c.token}`);
    if (body.trim() !== c.keyAuthorization) {
      throw new AcmeProblem('incorrectResponse', `http://${c.name}/.well-known/acme-challenge/${c.token} did not answer the key authorization`);
    }
  }
}

/** GET `path` from `address`:`port` with Host `host`; the body (at most 4 KiB) of a 200, else a problem. */
function httpGet(address: string, port: number, host: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method: 'GET', headers: { host, 'user-agent': 'tierca-acme-validator' }, timeout: HTTP_TIMEOUT_MS }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new AcmeProblem('incorrectResponse', `http://${host}${path} answered ${res.statusCode}${res.statusCode && res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          req.destroy();
          return reject(new AcmeProblem('incorrectResponse', `http://${host}${path} answered more than ${MAX_BODY} octets`));
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(new AcmeProblem('connection', `could not fetch http://${host}:${port}${path} from ${address}: ${(err as Error).message}`)));
    req.end();
  });
}
