// The JDK's own PKIX (sun.security.provider.certpath, not OpenSSL) as a relying party for the interop
// tests: validates one chain against one root with the root's and the CAs' name constraints in force,
// RFC 5280 policy processing with an explicit policy required, and revocation off.
//
//   java -cp <dir> PkixValidate <root.pem> <policy OID> <leaf.pem> [<intermediate.pem> …]
//
// Prints one line of JSON: {"valid":true,"policyTree":true} or {"valid":false,"index":n,"reason":"…","message":"…"}.
import java.io.FileInputStream;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXCertPathValidatorResult;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

public class PkixValidate {
  public static void main(String[] args) throws Exception {
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    X509Certificate root;
    try (FileInputStream in = new FileInputStream(args[0])) {
      root = (X509Certificate) cf.generateCertificate(in);
    }
    List<X509Certificate> path = new ArrayList<>();
    for (int i = 2; i < args.length; i++) {
      try (FileInputStream in = new FileInputStream(args[i])) {
        path.add((X509Certificate) cf.generateCertificate(in));
      }
    }
    CertPath certPath = cf.generateCertPath(path);
    PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
    params.setRevocationEnabled(false);
    params.setExplicitPolicyRequired(true);
    params.setInitialPolicies(Set.of(args[1]));
    try {
      PKIXCertPathValidatorResult result = (PKIXCertPathValidatorResult) CertPathValidator.getInstance("PKIX").validate(certPath, params);
      // With an explicit policy required, a valid path has a non-null valid policy tree (RFC 5280 §6.1.5).
      System.out.println("{\"valid\":true,\"policyTree\":" + (result.getPolicyTree() != null) + "}");
    } catch (CertPathValidatorException e) {
      System.out.println("{\"valid\":false,\"index\":" + e.getIndex() + ",\"reason\":" + quote(String.valueOf(e.getReason()))
          + ",\"message\":" + quote(String.valueOf(e.getMessage())) + "}");
    }
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
