/**
 * `tierca ocsp check <cert>`: asks the server's OCSP responder about a certificate the way a device
 * does (RFC 6960 request, `POST /ocsp`), checks the answer (pki/ocsp-answer-check.ts) and reports good,
 * revoked (time and reason) or unknown — as the exit code too: 0, 10, 11. Public: no token is sent.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readCertificate, verifyCertificateSignature, type CertificateFields } from '../../pki/certificate-reader.ts';
import { checkOcspAnswer, OcspAnswerError } from '../../pki/ocsp-answer-check.ts';
import { buildOcspRequest, certIdFor } from '../../pki/ocsp-request.ts';
import { parseOcspResponse, type ParsedOcspResponse } from '../../pki/ocsp-response.ts';
import { decodePemOrDer } from '../../pki/pem.ts';
import { isReasonCode, reasonName } from '../../pki/revocation-reason.ts';
import { apiPath } from '../api-client.ts';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';

/** Exit code for each unsuccessful OCSP responseStatus (RFC 6960 §2.3). */
const EXIT_FOR_STATUS: Record<Exclude<ParsedOcspResponse['responseStatus'], 'successful'>, number> = {
  malformedRequest: EXIT.internal, // the CLI built the request: a bug on one side or the other
  internalError: EXIT.internal,
  tryLater: EXIT.unavailable,
  sigRequired: EXIT.auth,
  unauthorized: EXIT.auth, // the responder does not answer for this issuer
};

const NONCE_LENGTH = 16;

/** A certificate file, PEM or DER, read and parsed; bad input is a usage error naming the option. */
function readCertificateFile(path: string, what: string): CertificateFields {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(`${what}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`);
  }
  try {
    return readCertificate(decodePemOrDer(raw, 'CERTIFICATE'));
  } catch (err) {
    throw usageError(`${what}: ${path}: ${(err as Error).message}`);
  }
}

interface CheckOptions {
  issuer?: string;
  issuerId?: string;
  nonce: boolean;
}

export function register(program: Command, context: ContextFactory): void {
  const ocsp = program.command('ocsp').description('OCSP: ask the responder about a certificate as a device would');

  ocsp
    .command('check')
    .description(
      'ask POST <server>/ocsp about a certificate; verify the answer; print good, revoked (time, reason) or unknown. Exit 0 good, 10 revoked, 11 unknown, 12 answer fails verification',
    )
    .argument('<cert.pem>', 'the certificate to check, PEM or DER')
    .option('--issuer <issuer.pem>', 'the issuing CA certificate, PEM or DER')
    .option('--issuer-id <id>', 'or: fetch the issuing CA certificate from the server (GET /ca/<id>.crt), e.g. yuhu-t2')
    .option('--no-nonce', 'send no nonce (the responder may then answer from its pre-signed cache)')
    .action(async (certPath: string, opts: CheckOptions, cmd: Command) => {
      const { api, out, setExitCode } = context(cmd);
      if (Boolean(opts.issuer) === Boolean(opts.issuerId)) {
        throw usageError('ocsp check: give the issuing CA as --issuer <issuer.pem> or --issuer-id <id> (one of them)');
      }
      const cert = readCertificateFile(certPath, 'certificate');
      let issuer: CertificateFields;
      if (opts.issuer) {
        issuer = readCertificateFile(opts.issuer, '--issuer');
      } else {
        const res = await api.binary({ method: 'GET', path: apiPath`/ca/${opts.issuerId!}.crt`, accept: 'application/pkix-cert' });
        try {
          issuer = readCertificate(decodePemOrDer(res.body, 'CERTIFICATE'));
        } catch (err) {
          throw new CliError(`the server's /ca/${opts.issuerId}.crt is not a certificate: ${(err as Error).message}`, EXIT.internal);
        }
      }
      const issuerLabel = opts.issuerId ?? opts.issuer!;
      if (!cert.issuer.equals(issuer.subject)) throw usageError(`${issuerLabel} is not the issuer of ${certPath}: the names differ`);
      let signedByIssuer = true;
      try {
        signedByIssuer = verifyCertificateSignature(cert.der, issuer.publicKeyInfo);
      } catch {
        // An algorithm this build cannot verify: the responder's answer is still checked below.
      }
      if (!signedByIssuer) throw usageError(`${certPath} is not signed by the key of ${issuerLabel}`);

      const certId = certIdFor({ issuerName: issuer.subject, issuerPublicKeyInfo: issuer.publicKeyInfo, serial: cert.serial });
      const nonce = opts.nonce ? randomBytes(NONCE_LENGTH) : undefined;
      const request = buildOcspRequest({ certIds: [certId], nonce });
      const res = await api.binary({
        method: 'POST',
        path: '/ocsp',
        body: request,
        contentType: 'application/ocsp-request',
        accept: 'application/ocsp-response',
      });
      let response: ParsedOcspResponse;
      try {
        response = parseOcspResponse(res.body);
      } catch (err) {
        throw new CliError(`the answer of ${api.url('/ocsp').href} is not an OCSP response: ${(err as Error).message}`, EXIT.ocspUntrusted);
      }
      if (response.responseStatus !== 'successful') {
        throw new CliError(`the OCSP responder answered ${response.responseStatus} (RFC 6960 §2.3)`, EXIT_FOR_STATUS[response.responseStatus]);
      }
      let verified;
      try {
        verified = checkOcspAnswer({ response, issuer, certId, nonce, now: new Date() });
      } catch (err) {
        if (err instanceof OcspAnswerError) throw new CliError(`the OCSP answer cannot be trusted: ${err.message}`, EXIT.ocspUntrusted);
        throw err;
      }

      const { certStatus, thisUpdate, nextUpdate } = verified.single;
      const reason =
        certStatus.status === 'revoked' ? (isReasonCode(certStatus.reason) ? reasonName(certStatus.reason) : null) : undefined;
      setExitCode(certStatus.status === 'good' ? EXIT.ok : certStatus.status === 'revoked' ? EXIT.ocspRevoked : EXIT.ocspUnknown);
      const result = {
        certificate: certPath,
        serial: cert.serial,
        issuer: issuerLabel,
        status: certStatus.status,
        ...(certStatus.status === 'revoked' ? { revokedAt: certStatus.revokedAt.toISOString(), reason } : {}),
        thisUpdate: thisUpdate.toISOString(),
        nextUpdate: nextUpdate?.toISOString() ?? null,
        producedAt: response.producedAt?.toISOString() ?? null,
        responder: verified.responder,
        nonce: verified.nonce,
      };
      if (out.json) return out.printJson(result);

      const headline =
        certStatus.status === 'revoked'
          ? `${out.status('revoked')} at ${result.revokedAt}, reason ${reason ?? 'not given'}`
          : out.status(certStatus.status);
      out.print(`${certPath}: ${headline}`);
      out.record({
        serial: result.serial,
        issuer: result.issuer,
        'this update': result.thisUpdate,
        'next update': result.nextUpdate ?? 'not given',
        responder: verified.responder === 'issuer' ? 'the issuing CA itself' : 'delegated responder certificate issued by the CA',
        nonce: { matched: 'echoed', absent: 'not echoed (a pre-signed answer)', 'not-sent': 'not sent' }[verified.nonce],
      });
    });
}
