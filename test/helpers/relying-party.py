#!/usr/bin/python3
"""A second, independent relying party for the interop tests: Python's `cryptography` (Debian's
python3-cryptography 38, its X.509 parser in Rust). Reads a JSON list of jobs on stdin and prints a
JSON list of results, one per job, in order:

  {"kind": "cert", "path": "leaf.pem", "issuer": "ca.pem"}     certificate (PEM or DER)
  {"kind": "csr", "path": "req.der"}                            PKCS#10 request (PEM or DER)
  {"kind": "crl", "path": "ca.crl", "issuer": "ca.pem"}         full or delta CRL
  {"kind": "ocsp", "path": "answer.der", "issuer": "ca.pem"}    OCSP response
  {"kind": "p12", "path": "x.p12", "password": "…", "issuer": "ca.pem"}

Every result has "ok" (false with "error" when anything raised). Each reads every extension (of the
certificate, the CRL and its entries, the OCSP response and its single response, the responder's
certificate) and checks every signature against the issuer's public key: the certificate's over
tbs_certificate_bytes, the CRL's with is_signature_valid, the OCSP response's over
tbs_response_bytes with the responder certificate it carries (itself checked against the issuer).
"""
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID


def read(path):
    with open(path, "rb") as f:
        return f.read()


def load_cert(data):
    return x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_certificate(data)


def verify(public_key, signature, data, hash_algorithm, signature_oid):
    """Raises InvalidSignature unless `signature` over `data` verifies with `public_key`."""
    if isinstance(public_key, rsa.RSAPublicKey):
        pad = (padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.AUTO)
               if signature_oid == SignatureAlgorithmOID.RSASSA_PSS else padding.PKCS1v15())
        public_key.verify(signature, data, pad, hash_algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    else:
        raise ValueError(f"unsupported issuer key {type(public_key).__name__}")


def extensions(exts):
    """Every extension, parsed (this is what raises on an arc the parser cannot hold)."""
    return [{"oid": e.oid.dotted_string, "critical": e.critical, "name": e.oid._name, "type": type(e.value).__name__} for e in exts]


def cert_summary(cert):
    exts = cert.extensions
    out = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "notBefore": cert.not_valid_before.isoformat() + "Z",
        "notAfter": cert.not_valid_after.isoformat() + "Z",
        "extensions": extensions(exts),
    }
    try:
        out["policies"] = [p.policy_identifier.dotted_string for p in exts.get_extension_for_class(x509.CertificatePolicies).value]
    except x509.ExtensionNotFound:
        out["policies"] = []
    try:
        out["eku"] = [o.dotted_string for o in exts.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        out["eku"] = []
    return out


def cert_signed_by(cert, issuer):
    verify(issuer.public_key(), cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm, cert.signature_algorithm_oid)
    return True


def check_cert(job):
    cert = load_cert(read(job["path"]))
    out = cert_summary(cert)
    if job.get("issuer"):
        out["signatureValid"] = cert_signed_by(cert, load_cert(read(job["issuer"])))
    return out


def check_csr(job):
    data = read(job["path"])
    csr = x509.load_pem_x509_csr(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_csr(data)
    return {"subject": csr.subject.rfc4514_string(), "extensions": extensions(csr.extensions), "signatureValid": csr.is_signature_valid}


def check_crl(job):
    data = read(job["path"])
    crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    exts = crl.extensions
    out = {
        "issuer": crl.issuer.rfc4514_string(),
        "extensions": extensions(exts),
        "crlNumber": exts.get_extension_for_class(x509.CRLNumber).value.crl_number,
        "entries": [],
    }
    try:
        out["deltaOf"] = exts.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number
    except x509.ExtensionNotFound:
        out["deltaOf"] = None
    for entry in crl:
        reason = None
        for e in entry.extensions:
            if isinstance(e.value, x509.CRLReason):
                reason = e.value.reason.name
        out["entries"].append({"serial": format(entry.serial_number, "x"), "reason": reason, "extensions": extensions(entry.extensions)})
    if job.get("issuer"):
        out["signatureValid"] = crl.is_signature_valid(load_cert(read(job["issuer"])).public_key())
    return out


def check_ocsp(job):
    resp = ocsp.load_der_ocsp_response(read(job["path"]))
    out = {"responseStatus": resp.response_status.name}
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return out
    out.update({
        "certStatus": resp.certificate_status.name,
        "serial": format(resp.serial_number, "x"),
        "revocationReason": resp.revocation_reason.name if resp.revocation_reason else None,
        "extensions": extensions(resp.extensions),
        "singleExtensions": extensions(resp.single_extensions),
        "nonce": None,
        "responders": [cert_summary(c) for c in resp.certificates],
    })
    for e in resp.extensions:
        if isinstance(e.value, x509.OCSPNonce):
            out["nonce"] = e.value.nonce.hex()
    issuer = load_cert(read(job["issuer"])) if job.get("issuer") else None
    # The signer: a delegated responder certificate the response carries (RFC 6960 §4.2.2.2), or the CA.
    signer = resp.certificates[0] if resp.certificates else issuer
    if signer is not None:
        verify(signer.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm, resp.signature_algorithm_oid)
        out["signatureValid"] = True
        if issuer is not None and resp.certificates:
            out["responderSignedByIssuer"] = cert_signed_by(resp.certificates[0], issuer)
    return out


def check_p12(job):
    bundle = pkcs12.load_pkcs12(read(job["path"]), job["password"].encode())
    cert = bundle.cert.certificate
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    out = cert_summary(cert)
    out["keyMatches"] = bundle.key.public_key().public_bytes(serialization.Encoding.DER, spki) == cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    out["additional"] = [c.certificate.subject.rfc4514_string() for c in bundle.additional_certs]
    if job.get("issuer"):
        out["signatureValid"] = cert_signed_by(cert, load_cert(read(job["issuer"])))
    return out


CHECKS = {"cert": check_cert, "csr": check_csr, "crl": check_crl, "ocsp": check_ocsp, "p12": check_p12}


def main():
    results = []
    for job in json.load(sys.stdin):
        try:
            results.append({"ok": True, **CHECKS[job["kind"]](job)})
        except Exception as err:  # noqa: BLE001 - every failure is a result the test asserts on
            results.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
