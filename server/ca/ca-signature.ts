/**
 * Which RSA padding a CA signs with, from the configuration: `root.rsaPadding`,
 * `domainCa.rsaPadding` and each tier's `caRsaPadding` (default PKCS#1 v1.5; `pss` gives RSASSA-PSS
 * with SHA-256, RFC 4055). ECDSA CAs ignore it. Every place that makes a CA's signer asks here, so
 * a CA signs the same way after a restart or a rollover as at its ceremony.
 */
import type { RsaPadding } from '../../pki/algorithms.ts';
import type { CaLayer } from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';

export function caRsaPadding(config: Pick<TiercaConfig, 'root' | 'domainCa' | 'tiers'>, ca: { layer: CaLayer; tier: string | null }): RsaPadding {
  if (ca.layer === 'root') return config.root.rsaPadding ?? 'pkcs1';
  if (ca.layer === 'domain') return config.domainCa.rsaPadding ?? 'pkcs1';
  return (ca.tier ? config.tiers.get(ca.tier)?.caRsaPadding : undefined) ?? 'pkcs1';
}
