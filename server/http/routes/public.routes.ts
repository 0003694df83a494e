/**
 * Public routes (no authentication): the CA index and certificates, CRLs, JSON status, health.
 * Everything here is read from stored artifacts through the services; nothing is built or signed on
 * the request path, and `/status` says what OCSP says (server/ca/status-source.ts).
 */
import { Router } from 'express';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { Clock } from '../../clock.ts';
import { certificateToPem } from '../../../pki/pem.ts';
import { caSummary, statusView } from '../views.ts';
import { TiercaError } from '../../errors.ts';

export function publicRoutes(deps: { ra: RegistrationAuthority; clock: Clock; publicUrl: string; health: () => Promise<void> }): Router {
  const { ra, publicUrl } = deps;
  const r = Router();
  r.get('/ca', (_req, res) => {
    res.json(ra.cas.publicList().map((ca) => caSummary(ca, publicUrl)));
  });
  r.get('/ca/:file', (req, res) => {
    const m = /^([a-z0-9-]{1,64})\.(crt|pem|cer|der)$/.exec(req.params.file);
    const ca = m ? ra.cas.publicGet(m[1]) : undefined;
    if (!m || !ca) throw new TiercaError('not-found', `no CA certificate ${req.params.file}`);
    res.set('cache-control', 'public, max-age=3600');
    if (m[2] === 'pem') res.type('application/x-pem-file').send(certificateToPem(ca.record.certificate));
    else res.type('application/pkix-cert').send(ca.record.certificate);
  });
  r.get('/crl/:file', async (req, res) => {
    const m = /^([a-z0-9-]{1,64}?)(-delta)?\.crl$/.exec(req.params.file);
    const ca = m ? ra.cas.publicGet(m[1]) : undefined;
    if (!m || !ca) throw new TiercaError('not-found', `no CRL ${req.params.file}`);
    const crl = await ra.cas.publishedCrl(ca.record.id, !!m[2]);
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - deps.clock.now().getTime()) / 1000));
    res.set({
      'content-type': 'application/pkix-crl',
      'last-modified': crl.thisUpdate.toUTCString(),
      expires: crl.nextUpdate.toUTCString(),
      'cache-control': `public, max-age=${maxAge}, no-transform, must-revalidate`,
    }).send(crl.der);
  });
  r.get('/status/:issuer/:serial', async (req, res) => {
    res.json(statusView(await ra.certificates.publicStatus(req.params.issuer, req.params.serial), deps.clock.now()));
  });
  r.get('/healthz', async (_req, res) => {
    try {
      await deps.health();
      res.json({ status: 'ok' });
    } catch {
      res.status(503).set('retry-after', '5').json({ status: 'unavailable' });
    }
  });
  return r;
}
