// Configuration is validated data: the example loads with DESIGN.md's tiers; a bad field is named.
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfigFile, EXAMPLE_CONFIG } from '../../server/config/load-config.ts';
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

describe('config', () => {
  it('loads the shipped Xiangtan topology with the default tiers', () => {
    const config = loadConfigFile(EXAMPLE_CONFIG);
    expect(config.domains.map((d) => d.slug)).toEqual(['xiangtan', 'yuhu', 'yuetang', 'xiangtan-county', 'xiangxiang', 'shaoshan']);
    const yuhu = config.domains.find((d) => d.slug === 'yuhu')!;
    expect(yuhu.organs.map((o) => o.slug)).toEqual(['party-committee', 'congress', 'government', 'cppcc', 'court', 'procuratorate']);
    expect(yuhu.organs.find((o) => o.slug === 'government')!.name).toBe('雨湖区人民政府');
    expect(config.domains[0].organs.find((o) => o.slug === 'court')!.name).toBe('湘潭市中级人民法院');
    expect([...config.tiers.keys()]).toEqual(['t1', 't2', 't3']);
    expect(config.tiers.get('t3')).toMatchObject({ approvals: 2, keyAlgorithms: ['P-384'], keyGeneration: ['holder'], statusValidityHours: 1 });
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

  it('refuses a missing file and invalid YAML with the file name', () => {
    expect(() => loadConfigFile('/nonexistent/tierca.yaml')).toThrow('cannot read configuration file /nonexistent/tierca.yaml');
  });
});
