/**
 * The public URLs tierca writes into certificates (AIA, CDP) and lists in `GET /ca`.
 */
export interface CaUrls {
  certificate: string;
  pem: string;
  crl: string;
  deltaCrl: string;
  ocsp: string;
}

export function caUrls(publicUrl: string, caId: string): CaUrls {
  return {
    certificate: `${publicUrl}/ca/${caId}.crt`,
    pem: `${publicUrl}/ca/${caId}.pem`,
    crl: `${publicUrl}/crl/${caId}.crl`,
    deltaCrl: `${publicUrl}/crl/${caId}-delta.crl`,
    ocsp: `${publicUrl}/ocsp`,
  };
}
