/**
 * The configuration schema (zod). A config file describes the topology (domains, organs), the CA
 * hierarchy's algorithms and lifetimes, and overrides of the default tiers.
 */
import { z } from 'zod';
import { KEY_ALGORITHMS } from '../../pki/algorithms.ts';
import { oidProblem } from '../../pki/oid.ts';
import { parseCidr } from '../../pki/ip-range.ts';

const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'a slug is lowercase letters, digits and dashes');
const dnsName = z.string().regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/, 'a DNS suffix like yuhu.xiangtan.intranet');
const keyAlgorithm = z.enum(KEY_ALGORITHMS);
/** How an RSA CA signs: PKCS#1 v1.5 (default) or RSASSA-PSS. */
const rsaPadding = z.enum(['pkcs1', 'pss']);
/** A dotted OID every X.509 stack can read: well formed, first arcs legal, every arc < 2^28 (pki/oid.ts). */
const oid = z.string().superRefine((value, ctx) => {
  const problem = oidProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
/** An IPv4 or IPv6 CIDR block with no host bits set (pki/ip-range.ts), e.g. `10.20.0.0/16`, `fd00:20::/32`. */
const cidr = z.string().superRefine((text, ctx) => {
  try {
    parseCidr(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** Whether a tier issues an encryption certificate with a holder's signing certificate (decision 0027). */
const encryptionRule = z.enum(['none', 'optional', 'required']);
/**
 * `tiers.<t>.encryptionCertificate`: one rule, which is the users' (devices and organs then get
 * none — the form before decision 0027), or one rule per holder kind, all three given.
 */
const encryptionCertificate = z.union(
  [encryptionRule, z.object({ user: encryptionRule, device: encryptionRule, organ: encryptionRule }).strict()],
  { error: 'give none, optional or required (the rule for users; devices and organs get none), or { user, device, organ } with one of these each' },
);

const tierOverride = z
  .object({
    name: z.string().min(1),
    /** The tier's certificate-policy OID; default `<policyArc>.1.<n>` for a tier `t<n>`. */
    policyOid: oid,
    /** The name the stored configuration (and tierca before the policy arc) gives policyOid. */
    oid,
    keyAlgorithms: z.array(keyAlgorithm).min(1),
    caAlgorithm: keyAlgorithm,
    caRsaPadding: rsaPadding,
    maxValidityDays: z
      .object({ user: z.number().int().positive(), device: z.number().int().positive(), organ: z.number().int().positive() })
      .strict(),
    keyGeneration: z.array(z.enum(['holder', 'server'])).min(1),
    approvals: z.union([z.literal(1), z.literal(2)]),
    encryptionCertificate,
    statusValidityHours: z.number().positive().max(24 * 7),
    archiveDays: z.number().int().nonnegative(),
    responderValidityDays: z.number().int().positive().max(30),
    renewAtFraction: z.number().gt(0).lt(1),
    supersedeGraceDays: z.number().nonnegative().max(365),
  })
  .strict()
  .partial();

export const configSchema = z
  .object({
    publicUrl: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
    country: z.string().length(2).regex(/^[A-Z]{2}$/),
    province: z.string().min(1),
    organisation: z.string().min(1),
    /** The deployment's registered OID arc; tier policy OIDs derive from it (docs/decisions/0010-policy-arc.md). */
    policyArc: oid.optional(),
    /** `dualControl`: an offline root's key opens only with two officers' passphrases (docs/offline-root.md). */
    root: z.object({ name: z.string().min(1), algorithm: keyAlgorithm, validityYears: z.number().int().min(1).max(30), rsaPadding: rsaPadding.optional(), dualControl: z.boolean().optional() }).strict(),
    domainCa: z.object({ algorithm: keyAlgorithm, validityYears: z.number().int().min(1).max(30), rsaPadding: rsaPadding.optional() }).strict(),
    tierCa: z.object({ validityYears: z.number().int().min(1).max(30) }).strict(),
    tiers: z.record(slug, tierOverride).default({}),
    /**
     * Where `tierca init` makes the CA keys (docs/decisions/0021-pkcs11-custody.md): sealed in the
     * database (software, the default) or inside a PKCS#11 token. The PIN is never configured here.
     */
    keystore: z
      .discriminatedUnion('custody', [
        z.object({ custody: z.literal('software') }).strict(),
        z.object({
          custody: z.literal('pkcs11'),
          module: z.string().min(1),
          tokenLabel: z.string().min(1).max(32),
          sessions: z.number().int().min(1).max(32).optional(),
          /** CA layers whose keys the ceremony makes in software (sealed under the passphrase) instead of the token, e.g. [root]. */
          inSoftware: z.array(z.enum(['root', 'domain', 'tier'])).max(3).optional(),
        }).strict(),
      ])
      .optional(),
    /**
     * The ACME server (docs/decisions/0023-acme.md): where challenge validation may reach. Validation
     * connects only to addresses inside the name's domain `ipRanges` or `validationRanges`; names are
     * resolved by `resolvers` (the intranet DNS; default the system resolver).
     */
    acme: z
      .object({
        /**
         * The base URL ACME clients reach this service at (default `publicUrl`). Set it to the HTTPS
         * URL when `publicUrl` names the plain-HTTP public port, which serves no ACME (decision 0012).
         */
        url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')).optional(),
        /** DNS servers (`host` or `host:port`) that http-01 and dns-01 validation ask. */
        resolvers: z.array(z.string().min(1)).max(8).optional(),
        /** The port http-01 validation connects to (RFC 8555 §8.3: 80). */
        http01Port: z.number().int().min(1).max(65535).optional(),
        /** Address ranges validation may reach besides the domains' own ipRanges. */
        validationRanges: z.array(cidr).max(64).optional(),
        /** New orders an account may place per hour (RFC 8555 §6.6 rateLimited beyond). */
        ordersPerHour: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    /**
     * The key-management centre (docs/decisions/0022-kmc.md): the cipher of the master key that wraps
     * escrowed keys, RFC 5649 key wrap over AES-256 or over SM4. Default: SM4 when the root is SM2.
     * A change takes effect at the next `tierca kmc rotate-master`.
     */
    kmc: z.object({ wrap: z.enum(['aes-256', 'sm4']).optional() }).strict().optional(),
    organs: z.array(z.object({ slug, name: z.string().min(1) }).strict()).min(1),
    domains: z
      .array(
        z
          .object({
            slug,
            name: z.string().min(1),
            dnsSuffix: dnsName,
            emailSuffix: dnsName,
            organNames: z.record(slug, z.string().min(1)).optional(),
            /** The domain's address ranges: IP SANs must lie inside; none = no IP SAN (decision 0004). */
            ipRanges: z.array(cidr).max(64).default([]),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type ConfigData = z.output<typeof configSchema>;
