/**
 * The one lookup of a certificate by the serial an operator typed (any case, colons, leading zeros:
 * pki/serial.ts normalises it) and, when serials clash across CAs, its issuer.
 */
import { normaliseSerial } from '../../pki/serial.ts';
import type { CertificateRecord, CertificateRepository } from '../storage/storage.ts';
import { TiercaError } from '../errors.ts';

/** The canonical serial of `text`, or `bad-request`. */
export function serialOrRefuse(text: string): string {
  const serial = normaliseSerial(text);
  if (!serial) throw new TiercaError('bad-request', `${text} is not a hex serial`);
  return serial;
}

export class CertificateLookup {
  constructor(private readonly certificates: Pick<CertificateRepository, 'findBySerial'>) {}

  /**
   * The certificate with serial `text` (issued by `issuerId` when given). `bad-request` for a serial
   * that is not hex, `not-found`, or `conflict` when several CAs issued that serial and none is named.
   */
  async find(text: string, issuerId?: string): Promise<CertificateRecord> {
    const serial = serialOrRefuse(text);
    const found = (await this.certificates.findBySerial(serial)).filter((c) => !issuerId || c.issuerId === issuerId);
    if (found.length === 0) throw new TiercaError('not-found', `no certificate ${serial}${issuerId ? ` issued by ${issuerId}` : ''}`, { detail: { serial, issuer: issuerId } });
    if (found.length > 1) throw new TiercaError('conflict', `serial ${serial} exists under several issuers; name one with issuer`);
    return found[0];
  }
}
