/**
 * The CAs this instance runs, loaded at start: each CA's record, its parsed certificate fields, its
 * chain up to the root and its signer (from the keystore). Lookups by id and by RFC 6960
 * issuerKeyHash are O(1) because the OCSP path uses them per request.
 */
import type { CaRecord } from '../storage/storage.ts';
import type { Signer } from '../../pki/signer.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { readCertificate, type CertificateFields } from '../../pki/certificate-reader.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';

export interface LoadedCa {
  readonly record: CaRecord;
  readonly fields: CertificateFields;
  readonly keyAlgorithm: KeyAlgorithm;
  /** DER certificates from this CA up to and including the root. */
  readonly chain: readonly Buffer[];
  readonly signer: Signer;
}

export class CaDirectory {
  private readonly byId = new Map<string, LoadedCa>();
  private readonly byKeyHash = new Map<string, LoadedCa>();

  /** Builds the directory from CA records whose keys are already loaded in `keystore`. */
  static build(records: readonly CaRecord[], keyAlgorithms: ReadonlyMap<string, KeyAlgorithm>, keystore: KeyStore): CaDirectory {
    const dir = new CaDirectory();
    const recordsById = new Map(records.map((r) => [r.id, r]));
    for (const record of records) {
      const chain: Buffer[] = [];
      for (let cur: CaRecord | undefined = record; cur; cur = cur.parentId ? recordsById.get(cur.parentId) : undefined) {
        chain.push(cur.certificate);
        if (chain.length > 8) throw new Error(`CA ${record.id}: parent chain loops`);
      }
      const keyAlgorithm = keyAlgorithms.get(record.keyId);
      if (!keyAlgorithm) throw new Error(`CA ${record.id}: key ${record.keyId} is not in the keystore table`);
      dir.add({ record, fields: readCertificate(record.certificate), keyAlgorithm, chain, signer: keystore.signer(record.keyId) });
    }
    return dir;
  }

  add(ca: LoadedCa): void {
    this.byId.set(ca.record.id, ca);
    this.byKeyHash.set(ca.record.keyHashSha1, ca);
  }

  get(id: string): LoadedCa | undefined {
    return this.byId.get(id);
  }

  /** The CA whose public key hashes (SHA-1 of the key bits) to `keyHashSha1` hex. */
  findByKeyHash(keyHashSha1: string): LoadedCa | undefined {
    return this.byKeyHash.get(keyHashSha1);
  }

  list(): LoadedCa[] {
    return [...this.byId.values()];
  }

  /** The issuing (tier) CA of a domain and tier. */
  issuingCa(domain: string, tier: string): LoadedCa | undefined {
    return this.byId.get(tierCaId(domain, tier));
  }
}

export const tierCaId = (domain: string, tier: string): string => `${domain}-${tier}`;
export const ROOT_CA_ID = 'root';
