/**
 * Public routes (no authentication): the CA index and certificates, CRLs, JSON status, health.
 * Everything here is read from stored artifacts; nothing is built or signed on the request path.
 */
import { Router } from 'express';
import type { Store } from '../../storage/storage.ts';
import type { CaDirectory } from '../../ca/ca-directory.ts';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { Clock } from '../../clock.ts';
import { certificateToPem } from '../../../pki/pem.ts';
import { reasonName } from '../../../pki/revocation-reason.ts';
import { caSummary } from '../views.ts';
import { TiercaError } from '../../errors.ts';

const DAY_MS = 86_400_000;

export function publicRoutes(deps: { store: Store; cas: CaDirectory; tiers: ReadonlyMap<string, TierPolicy>; clock: Clock; publicUrl: string }): Router {
  const { store, cas, publicUrl } = deps;
  const r = Router();
  r.get('/ca', (_req, res) => {
    res.json(cas.list().map((ca) => caSummary(ca, publicUrl)));
  });
  r.get('/ca/:file', (req, res) => {
    const m = /^([a-z0-9-]{1,64})\.(crt|pem|cer|der)$/.exec(req.params.file);
    const ca = m ? cas.get(m[1]) : undefined;
    if (!m || !ca) throw new TiercaError('not-found', `no CA certificate ${req.params.file}`);
    res.set('cache-control', 'public, max-age=3600');
    if (m[2] === 'pem') res.type('application/x-pem-file').send(certificateToPem(ca.record.certificate));
    else res.type('application/pkix-cert').send(ca.record.certificate);
  });
  r.get('/crl/:file', async (req, res) => {
    const m = /^([a-z0-9-]{1,64}?)(-delta)?\.crl$/.exec(req.params.file);
    const ca = m ? cas.get(m[1]) : undefined;
    if (!m || !ca) throw new TiercaError('not-found', `no CRL ${req.params.file}`);
    const crl = await store.crls.latest(ca.record.id, !!m[2]);
    if (!crl) throw new TiercaError('not-found', `no CRL published yet for ${ca.record.id}`);
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - deps.clock.now().getTime()) / 1000));
    res.set({
      'content-type': 'application/pkix-crl',
      'last-modified': crl.thisUpdate.toUTCString(),
      expires: crl.nextUpdate.toUTCString(),
      'cache-control': `public, max-age=${maxAge}, no-transform, must-revalidate`,
    }).send(crl.der);
  });
  r.get('/status/:issuer/:serial', async (req, res) => {
    const ca = cas.get(req.params.issuer);
    if (!ca) throw new TiercaError('not-found', `no CA ${req.params.issuer}`);
    const serial = req.params.serial.toLowerCase().replace(/^(00)+(?=.)/, '');
    if (!/^[0-9a-f]{1,64}$/.test(serial)) throw new TiercaError('bad-request', `${req.params.serial} is not a hex serial`);
    const cert = await store.certificates.get(ca.record.id, serial);
    const now = deps.clock.now();
    const archiveDays = (cert?.tier ? deps.tiers.get(cert.tier)?.archiveDays : undefined) ?? 365;
    if (!cert || cert.notAfter.getTime() + archiveDays * DAY_MS < now.getTime()) {
      res.json({ issuer: ca.record.id, serial, status: 'unknown' });
      return;
    }
    const caRevoked = ca.record.status === 'revoked';
    res.json({
      issuer: ca.record.id,
      serial,
      status: caRevoked ? 'revoked' : cert.status,
      revokedAt: (caRevoked ? ca.record.revokedAt : cert.revokedAt)?.toISOString() ?? null,
      reason: caRevoked ? 'cACompromise' : cert.revocationReason == null ? null : reasonName(cert.revocationReason),
      notAfter: cert.notAfter.toISOString(),
      expired: cert.notAfter.getTime() < now.getTime(),
    });
  });
  r.get('/healthz', async (_req, res) => {
    try {
      await store.meta.get('schema');
      res.json({ status: 'ok' });
    } catch {
      res.status(503).set('retry-after', '5').json({ status: 'unavailable' });
    }
  });
  return r;
}
