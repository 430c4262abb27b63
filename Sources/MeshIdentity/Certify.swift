public import Crypto
public import FoundationEssentials
import SwiftASN1
public import X509

/// What a proxy sends the identity service (`POST /v1/certify`): the identity it asks for, the
/// bootstrap token of its service account, and a CSR for a key only the proxy holds.
public struct CertifyRequest: Codable, Sendable {
    public var identity: String
    public var token: String
    /// PEM.
    public var csr: String

    public init(identity: String, token: String, csr: String) {
        self.identity = identity
        self.token = token
        self.csr = csr
    }
}

/// The identity service's answer: the proxy's certificate, the issuer's and the trust anchor's (PEM).
public struct CertifyAnswer: Codable, Sendable {
    public var certificate: String
    public var issuer: String
    public var trustAnchor: String
}

/// A proxy's own private key (made in the proxy, never sent anywhere) and the CSRs it signs.
public struct WorkloadKey: Sendable {
    let key: P256.Signing.PrivateKey

    /// A fresh key: each renewal makes a new one, as Linkerd's proxies do.
    public init() {
        key = P256.Signing.PrivateKey()
    }

    /// A certificate signing request for `name`, signed with this key.
    public func csrPEM(for name: String) throws(IdentityError) -> String {
        do {
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(name) },
                                                    privateKey: .init(key), attributes: CertificateSigningRequest.Attributes(),
                                                    signatureAlgorithm: .ecdsaWithSHA256)
            return try csr.serializeAsPEM().pemString
        } catch {
            throw IdentityError("cannot make a CSR for \(name): \(error)")
        }
    }

    /// The identity an answer gives this key, once checked: the certificate is for this key and
    /// `name`, the issuer signed it, and the issuer chains to `trustAnchorPEM`, the anchor this
    /// proxy was configured with (an identity service cannot hand it another).
    /// The certificate must also be valid `now` (a clock that is off by more than its lifetime,
    /// or a service that signs stale dates, is an error, not a certificate to use).
    public func identity(_ name: String, from answer: CertifyAnswer, trustAnchorPEM: String, now: Date = Date()) throws(IdentityError) -> WorkloadIdentity {
        let leaf: Certificate, issuer: Certificate, anchor: Certificate, pinned: Certificate
        do {
            leaf = try Certificate(pemEncoded: answer.certificate)
            issuer = try Certificate(pemEncoded: answer.issuer)
            anchor = try Certificate(pemEncoded: answer.trustAnchor)
            pinned = try Certificate(pemEncoded: trustAnchorPEM)
        } catch {
            throw IdentityError("the identity service's answer does not parse: \(error)")
        }
        guard anchor == pinned else { throw IdentityError("the identity service answered with another trust anchor than this proxy's") }
        guard leaf.publicKey == Certificate.PublicKey(key.publicKey) else { throw IdentityError("the certificate answered is not for this proxy's key") }
        let names = (try? leaf.extensions.subjectAlternativeNames)??.compactMap { san -> String? in
            if case .dnsName(let n) = san { return n }
            return nil
        } ?? []
        guard names == [name] else { throw IdentityError("the certificate answered is for \(names), not \(name)") }
        guard issuer.publicKey.isValidSignature(leaf.signature, for: leaf), anchor.publicKey.isValidSignature(issuer.signature, for: issuer) else {
            throw IdentityError("the certificate answered does not chain to the trust anchor")
        }
        guard now >= leaf.notValidBefore, now < leaf.notValidAfter else {
            throw IdentityError("the certificate answered is valid from \(leaf.notValidBefore) to \(leaf.notValidAfter), not now (\(now)): is a clock wrong?")
        }
        guard now < issuer.notValidAfter, now < anchor.notValidAfter else {
            throw IdentityError("the issuer or the trust anchor of the certificate answered has expired")
        }
        do {
            return try WorkloadIdentity(name: name, leaf: leaf, key: key, issuer: issuer, trustAnchor: anchor)
        } catch {
            throw IdentityError("cannot use the certificate answered: \(error)")
        }
    }
}

extension IdentityAuthority {
    /// Linkerd's identity name for a service account, in `trustDomain`.
    public static func identityName(serviceAccount: String, namespace: String, trustDomain: String) -> String {
        "\(serviceAccount).\(namespace).serviceaccount.identity.linkerd.\(trustDomain)"
    }

    /// The trust anchor as PEM: what proxies are given to check peers and their own certificates.
    public func trustAnchorPEM() throws(IdentityError) -> String {
        do {
            return try trustAnchor.serializeAsPEM().pemString
        } catch {
            throw IdentityError("cannot encode the trust anchor: \(error)")
        }
    }

    /// The trust domain a trust anchor (PEM) was made for (its name is `root.linkerd.DOMAIN`).
    public static func trustDomain(anchorPEM: String) throws(IdentityError) -> String {
        guard let anchor = try? Certificate(pemEncoded: anchorPEM) else { throw IdentityError("not a PEM certificate") }
        let subject = anchor.subject.description
        guard let range = subject.firstRange(of: "root.linkerd.") else { throw IdentityError("\(subject) is not a mesh trust anchor (root.linkerd.DOMAIN)") }
        return String(subject[range.upperBound...])
    }

    /// Signs `csrPEM` for `name` (the caller has checked that whoever asks may have it): the CSR's
    /// signature must hold and its subject must be `name`. The certificate is for the CSR's key.
    public func certify(csrPEM: String, name: String, validFor seconds: TimeInterval, now: Date = Date()) throws(IdentityError) -> CertifyAnswer {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: csrPEM)
        } catch {
            throw IdentityError("the CSR does not parse: \(error)")
        }
        guard seconds.isFinite, seconds > 0 else { throw IdentityError("a certificate's lifetime must be a positive number of seconds, not \(seconds)") }
        guard now < issuer.notValidAfter else { throw IdentityError("the issuer expired at \(issuer.notValidAfter): create a new one") }
        // A leaf never outlives the issuer that signed it (and the dates stay within what X.509 can write).
        let lifetime = min(seconds, issuer.notValidAfter.timeIntervalSince(now))
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else { throw IdentityError("the CSR's signature does not hold") }
        let asked = csr.subject.description
        guard asked == "CN=\(name)" else { throw IdentityError("the CSR asks for \(asked), not CN=\(name)") }
        do {
            let leaf = try issueCertificate(name, publicKey: csr.publicKey, validFor: lifetime, now: now)
            return CertifyAnswer(certificate: try leaf.serializeAsPEM().pemString, issuer: try issuer.serializeAsPEM().pemString,
                                 trustAnchor: try trustAnchor.serializeAsPEM().pemString)
        } catch let e as IdentityError {
            throw e
        } catch {
            throw IdentityError("cannot sign a certificate for \(name): \(error)")
        }
    }
}
