// Configuration is validated data: the example loads with DESIGN.md's tiers; a bad field is named.
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfigFile, loadStoredConfig, documentationArcOids, EXAMPLE_CONFIG } from '../../server/config/load-config.ts';
import { exampleConfigData } from '../helpers/config.ts';
import { TiercaError } from '../../server/errors.ts';

const refusal = (data: unknown): TiercaError => {
  try {
    buildConfig(data);
  } catch (err) {
    return err as TiercaError;
  }
  throw new Error('expected the config to be refused');
};

/** Every field a tier not among the defaults must give (the policy OID aside). */
const fullTier = {
  name: 'x', keyAlgorithms: ['P-256'], caAlgorithm: 'P-256', maxValidityDays: { user: 1, device: 1, organ: 1 },
  keyGeneration: ['holder'], approvals: 1, encryptionCertificate: 'none', statusValidityHours: 1, archiveDays: 1, responderValidityDays: 1,
};

describe('config', () => {
  it('loads the shipped Xiangtan topology with the default tiers', () => {
    const config = loadConfigFile(EXAMPLE_CONFIG);
    expect(config.domains.map((d) => d.slug)).toEqual(['xiangtan', 'yuhu', 'yuetang', 'xiangtan-county', 'xiangxiang', 'shaoshan']);
    const yuhu = config.domains.find((d) => d.slug === 'yuhu')!;
    expect(yuhu.organs.map((o) => o.slug)).toEqual(['party-committee', 'congress', 'government', 'cppcc', 'court', 'procuratorate']);
    expect(yuhu.organs.find((o) => o.slug === 'government')!.name).toBe('雨湖区人民政府');
    expect(config.domains[0].organs.find((o) => o.slug === 'court')!.name).toBe('湘潭市中级人民法院');
    expect([...config.tiers.keys()]).toEqual(['t1', 't2', 't3']);
    expect(config.tiers.get('t3')).toMatchObject({ approvals: 2, keyAlgorithms: ['P-384', 'SM2'], keyGeneration: ['holder'], statusValidityHours: 1 });
    expect(config.tiers.get('t2')!.maxValidityDays).toEqual({ user: 365, device: 365, organ: 730 });
  });

  it('applies a tier override and keeps the other defaults', () => {
    const config = buildConfig({ ...exampleConfigData(), tiers: { t1: { maxValidityDays: { user: 30, device: 60, organ: 90 } } } });
    expect(config.tiers.get('t1')!.maxValidityDays.user).toBe(30);
    expect(config.tiers.get('t1')!.approvals).toBe(1);
  });

  it.each([
    ['a bad DNS suffix', (d: any) => { d.domains[1].dnsSuffix = 'Not A Suffix'; }, 'domains.1.dnsSuffix'],
    ['an unknown key algorithm', (d: any) => { d.root.algorithm = 'P-521'; }, 'root.algorithm'],
    ['a bad tier field', (d: any) => { d.tiers = { t2: { approvals: 3 } }; }, 'tiers.t2.approvals'],
    ['an unknown field', (d: any) => { d.domains[0].colour = 'red'; }, 'domains.0'],
    ['a duplicate domain', (d: any) => { d.domains[2].slug = 'yuhu'; }, 'domains.2.slug'],
    ['a new tier without its fields', (d: any) => { d.tiers = { t4: { name: 'x' } }; }, 'tiers.t4'],
    ['a publicUrl that is not http', (d: any) => { d.publicUrl = 'ftp://x'; }, 'publicUrl'],
  ])('refuses %s, naming the field', (_what, mutate, path) => {
    const data = exampleConfigData();
    mutate(data);
    const err = refusal(data);
    expect(err).toBeInstanceOf(TiercaError);
    expect(err.code).toBe('invalid-config');
    expect(err.message).toContain(path);
  });

  it('reads encryptionCertificate per holder kind: one rule is the users\' (old configs), or { user, device, organ } (decision 0027)', () => {
    const defaults = buildConfig(exampleConfigData()).tiers;
    expect([...defaults.values()].map((t) => t.encryptionCertificate)).toEqual([
      { user: 'optional', device: 'none', organ: 'none' },
      { user: 'required', device: 'none', organ: 'none' },
      { user: 'required', device: 'none', organ: 'none' },
    ]);
    const old = buildConfig({ ...exampleConfigData(), tiers: { t1: { encryptionCertificate: 'required' }, t4: { ...fullTier, policyOid: '1.3.6.1.4.1.32473.1.4' } } });
    expect(old.tiers.get('t1')!.encryptionCertificate).toEqual({ user: 'required', device: 'none', organ: 'none' });
    expect(old.tiers.get('t4')!.encryptionCertificate).toEqual({ user: 'none', device: 'none', organ: 'none' });
    const perKind = buildConfig({ ...exampleConfigData(), tiers: { t2: { encryptionCertificate: { user: 'required', device: 'required', organ: 'optional' } } } });
    expect(perKind.tiers.get('t2')!.encryptionCertificate).toEqual({ user: 'required', device: 'required', organ: 'optional' });
    expect(Object.isFrozen(perKind.tiers.get('t2')!.encryptionCertificate)).toBe(true);
  });

  it.each([
    ['a kind left out', { user: 'required', device: 'required' }, 'give none, optional or required (the rule for users; devices and organs get none), or { user, device, organ } with one of these each'],
    ['an unknown rule', 'always', 'give none, optional or required (the rule for users; devices and organs get none), or { user, device, organ } with one of these each'],
    ['an unknown kind', { user: 'required', device: 'none', organ: 'none', ocsp: 'none' }, 'Unrecognized key: "ocsp"'],
  ])('refuses an encryptionCertificate with %s, naming the field', (_what, value, why) => {
    const err = refusal({ ...exampleConfigData(), tiers: { t2: { encryptionCertificate: value } } });
    expect(err.message).toBe(`invalid configuration: tiers.t2.encryptionCertificate: ${why}`);
  });

  it('refuses device encryption certificates at a tier whose keys are all RSA (a device encryption key is never RSA)', () => {
    const err = refusal({ ...exampleConfigData(), tiers: { t2: { keyAlgorithms: ['RSA-3072'], encryptionCertificate: { user: 'required', device: 'optional', organ: 'none' } } } });
    expect(err.message).toBe('invalid configuration: tiers.t2.encryptionCertificate.device: a device\'s encryption key is EC or SM2, and tier t2 admits only RSA keys (decision 0027)');
    expect(buildConfig({ ...exampleConfigData(), tiers: { t2: { keyAlgorithms: ['RSA-3072'] } } }).tiers.get('t2')!.keyAlgorithms).toEqual(['RSA-3072']);
  });

  it('derives each tier policy OID from policyArc (documentation arc in the example)', () => {
    const config = loadConfigFile(EXAMPLE_CONFIG);
    expect(config.policyArc).toBe('1.3.6.1.4.1.32473');
    expect([...config.tiers.values()].map((t) => t.oid)).toEqual(['1.3.6.1.4.1.32473.1.1', '1.3.6.1.4.1.32473.1.2', '1.3.6.1.4.1.32473.1.3']);
    expect(documentationArcOids(config)).toHaveLength(3);
    const own = buildConfig({ ...exampleConfigData(), policyArc: '1.2.156.112233', tiers: { t3: { policyOid: '1.2.156.112233.9.3' } } });
    expect([...own.tiers.values()].map((t) => t.oid)).toEqual(['1.2.156.112233.1.1', '1.2.156.112233.1.2', '1.2.156.112233.9.3']);
    expect(documentationArcOids(own)).toEqual([]);
  });

  it('reads a stored configuration: no policyArc, each tier OID under its stored name oid', () => {
    const data = exampleConfigData();
    delete data.policyArc;
    data.tiers = { t1: { oid: '1.2.156.1.1' }, t2: { oid: '1.2.156.1.2' }, t3: { policyOid: '1.2.156.1.3' } };
    expect([...buildConfig(data).tiers.values()].map((t) => t.oid)).toEqual(['1.2.156.1.1', '1.2.156.1.2', '1.2.156.1.3']);
  });

  const UUID_ARC = '2.25.128645345817574449542064460584668162789';
  it.each([
    ['a 2.25.UUID arc', (d: any) => { d.policyArc = UUID_ARC; },
      'policyArc: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['a 2.25.UUID tier policy', (d: any) => { d.tiers = { t2: { policyOid: `${UUID_ARC}.1.2` } }; },
      'tiers.t2.policyOid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['a 2.25.UUID tier policy under the stored name', (d: any) => { d.tiers = { t1: { oid: `${UUID_ARC}.1.1` } }; },
      'tiers.t1.oid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['a negative arc', (d: any) => { d.tiers = { t1: { policyOid: '1.2.156.-7.1' } }; }, 'tiers.t1.policyOid: arc -7 is negative'],
    ['a malformed OID', (d: any) => { d.tiers = { t3: { policyOid: '1.2..156' } }; },
      'tiers.t3.policyOid: "1.2..156" is not a dotted OID (decimal arcs separated by dots)'],
    ['a malformed arc', (d: any) => { d.policyArc = 'one.two'; }, 'policyArc: "one.two" is not a dotted OID'],
    ['an illegal first arc', (d: any) => { d.policyArc = '3.1.2'; }, 'policyArc: first arc 3 must be 0, 1 or 2 (X.660)'],
    ['an illegal second arc', (d: any) => { d.policyArc = '1.56.2'; }, 'policyArc: second arc 56 must be below 40 under 1 (X.690 §8.19.4)'],
    ['a derived OID past 2^28', (d: any) => { d.tiers = { t268435456: { ...fullTier, policyOid: undefined } }; },
      'tiers.t268435456.policyOid: arc 268435456 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['anyPolicy as a tier policy', (d: any) => { d.tiers = { t1: { policyOid: '2.5.29.32.0' } }; },
      'tiers.t1.policyOid: 2.5.29.32.0 is anyPolicy (RFC 5280 §4.2.1.4), not a tier policy'],
    ['two tiers with one policy', (d: any) => { d.tiers = { t3: { policyOid: '1.3.6.1.4.1.32473.1.1' } }; },
      'tiers.t3.policyOid: 1.3.6.1.4.1.32473.1.1 is also the policy of tier t1'],
    ['both names of the policy OID', (d: any) => { d.tiers = { t1: { policyOid: '1.2.3', oid: '1.2.3' } }; },
      'tiers.t1.oid: give policyOid or its old name oid, not both'],
    ['no arc and no tier policy', (d: any) => { delete d.policyArc; },
      "tiers.t1.policyOid: no policyArc to derive it from: set policyArc (your deployment's registered OID arc) or tiers.t1.policyOid"],
    ['a new tier not named t<n> without its policy', (d: any) => { d.tiers = { secret: fullTier }; },
      'tiers.secret.policyOid: tier secret is not named t<n>, so no OID derives from policyArc: give tiers.secret.policyOid'],
  ])('refuses %s, naming the field', (_what, mutate, message) => {
    const data = exampleConfigData();
    mutate(data);
    const err = refusal(data);
    expect(err.code).toBe('invalid-config');
    expect(err.message).toContain(message);
  });

  it('refuses a stored configuration of an earlier tierca with what to do, demo or not', () => {
    const data = exampleConfigData();
    delete data.policyArc;
    data.tiers = { t1: { oid: `${UUID_ARC}.1.1` }, t2: { oid: `${UUID_ARC}.1.2` }, t3: { oid: `${UUID_ARC}.1.3` } };
    const stored = JSON.stringify(data);
    const demo = (() => { try { loadStoredConfig(stored, { demo: true, dataDir: '/srv/tierca/data' }); } catch (e) { return e as TiercaError; } })()!;
    expect(demo.code).toBe('invalid-config');
    expect(demo.message.startsWith(
      'the configuration stored in this database, written by an earlier tierca, is refused: tiers.t1.oid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B); tiers.t2.oid: ',
    )).toBe(true);
    expect(demo.message.endsWith(
      '. this is a demo database: stop tierca, remove its data folder (rm -r /srv/tierca/data) and run `npm start` again to re-create the demo',
    )).toBe(true);
    const real = (() => { try { loadStoredConfig(stored, { demo: false }); } catch (e) { return e as TiercaError; } })()!;
    expect(real.message).toContain('tiers.t1.oid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)');
    expect(real.message).toContain('run a new key ceremony (`tierca init --config <file>` with policyArc set to your registered OID arc) into a new database');
  });

  it('refuses a missing file and invalid YAML with the file name', () => {
    expect(() => loadConfigFile('/nonexistent/tierca.yaml')).toThrow('cannot read configuration file /nonexistent/tierca.yaml');
  });
});

describe('SM2 in the configuration', () => {
  it('ships an all-SM2 and a mixed profile of the example topology (extends)', () => {
    const sm2 = loadConfigFile('config/xiangtan-sm2.example.yaml');
    expect([sm2.root.algorithm, sm2.domainCa.algorithm]).toEqual(['SM2', 'SM2']);
    expect([...sm2.tiers.values()].map((t) => [t.caAlgorithm, t.keyAlgorithms])).toEqual([['SM2', ['SM2']], ['SM2', ['SM2']], ['SM2', ['SM2']]]);
    expect(sm2.domains).toHaveLength(6);
    const mixed = loadConfigFile('config/xiangtan-mixed.example.yaml');
    expect([mixed.root.algorithm, mixed.domainCa.algorithm]).toEqual(['P-384', 'P-384']);
    expect(mixed.tiers.get('t3')).toMatchObject({ caAlgorithm: 'SM2', keyAlgorithms: ['SM2'], approvals: 2 });
    expect(mixed.tiers.get('t1')!.keyAlgorithms).toContain('SM2');
    expect(mixed.domains.map((d) => d.slug)).toEqual(loadConfigFile(EXAMPLE_CONFIG).domains.map((d) => d.slug));
  });

  it('refuses SM2 certificates valid longer than ten years (GM/T 0015), naming the field', () => {
    const data = exampleConfigData();
    expect(refusal({ ...data, root: { ...data.root, algorithm: 'SM2', validityYears: 20 } }).message).toMatch(/root\.validityYears: 20 years.*ten years at most/);
    expect(refusal({ ...data, domainCa: { ...data.domainCa, algorithm: 'SM2', validityYears: 11 } }).message).toMatch(/domainCa\.validityYears/);
    expect(refusal({ ...data, tierCa: { validityYears: 12 }, tiers: { t2: { caAlgorithm: 'SM2' } } }).message).toMatch(/tierCa\.validityYears: 12 years for tier t2/);
    expect(refusal({ ...data, tiers: { t1: { maxValidityDays: { user: 30, device: 3651, organ: 30 } } } }).message).toMatch(/tiers\.t1\.maxValidityDays\.device: 3651 days/);
    // Without SM2 among a tier's algorithms, the lifetime is the tier's own business.
    expect(() => buildConfig({ ...data, tiers: { t1: { keyAlgorithms: ['P-256'], maxValidityDays: { user: 30, device: 3651, organ: 30 } } } })).not.toThrow();
  });

  it('refuses an extends loop', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tierca-config-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'extends: b.yaml\n');
      writeFileSync(join(dir, 'b.yaml'), 'extends: a.yaml\n');
      expect(() => loadConfigFile(join(dir, 'a.yaml'))).toThrow(/extends loops/);
      writeFileSync(join(dir, 'c.yaml'), 'extends: 7\n');
      expect(() => loadConfigFile(join(dir, 'c.yaml'))).toThrow(/extends must name a file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
