public import X509
public import Crypto
public import NIOSSL
import SwiftASN1
public import FoundationEssentials

/// Why an identity could not be made, read or used.
public struct IdentityError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The mesh's certificate authority, as linkerd-identity holds it: a long-lived trust anchor
/// (root CA) and an issuer (intermediate CA) signed by it that signs workload certificates.
public struct IdentityAuthority: Sendable {
    public let trustDomain: String
    public let trustAnchor: Certificate
    public let issuer: Certificate
    private let issuerKey: P256.Signing.PrivateKey
    /// Only when freshly created (it is written to disk, never needed again by a proxy).
    private let anchorKey: P256.Signing.PrivateKey?

    /// A new trust anchor valid for `anchorDays` and an issuer valid for `issuerDays`.
    public static func create(trustDomain: String = "cluster.local", anchorDays: Double = 365, issuerDays: Double = 180,
                              now: Date = Date()) throws(IdentityError) -> IdentityAuthority {
        let anchorKey = P256.Signing.PrivateKey()
        let issuerKey = P256.Signing.PrivateKey()
        do {
            let anchorName = try DistinguishedName { CommonName("root.linkerd.\(trustDomain)") }
            let issuerName = try DistinguishedName { CommonName("identity.linkerd.\(trustDomain)") }
            /// A CA certificate for `key`, signed by `signer` (the anchor signs itself and the issuer).
            func ca(_ key: P256.Signing.PrivateKey, _ subject: DistinguishedName, days: Double, pathLength: Int) throws -> Certificate {
                try Certificate(
                    version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                    notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(days * 86_400),
                    issuer: anchorName, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: try Certificate.Extensions {
                        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    },
                    issuerPrivateKey: .init(anchorKey))
            }
            let anchor = try ca(anchorKey, anchorName, days: anchorDays, pathLength: 1)
            let issuer = try ca(issuerKey, issuerName, days: issuerDays, pathLength: 0)
            return IdentityAuthority(trustDomain: trustDomain, trustAnchor: anchor, issuer: issuer, issuerKey: issuerKey, anchorKey: anchorKey)
        } catch {
            throw IdentityError("cannot create the trust anchor and issuer: \(error)")
        }
    }

    /// The files `create` writes and `load` reads, in `directory`.
    public enum File: String, CaseIterable, Sendable {
        case anchor = "ca.crt", anchorKey = "ca.key", issuer = "issuer.crt", issuerKey = "issuer.key"
        var isKey: Bool { self == .anchorKey || self == .issuerKey }
    }

    /// Writes the certificates (0644) and keys (0600, never readable by others) to `directory`.
    public func write(to directory: String) throws(IdentityError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw IdentityError("cannot create \(directory): \(error)")
        }
        var contents: [File: String] = [:]
        do {
            contents[.anchor] = try trustAnchor.serializeAsPEM().pemString + "\n"
            contents[.issuer] = try issuer.serializeAsPEM().pemString + "\n"
        } catch {
            throw IdentityError("cannot encode the certificates: \(error)")
        }
        contents[.issuerKey] = issuerKey.pemRepresentation + "\n"
        if let anchorKey { contents[.anchorKey] = anchorKey.pemRepresentation + "\n" }
        for (file, text) in contents {
            let path = directory + "/" + file.rawValue
            guard fm.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: file.isKey ? 0o600 : 0o644]) else {
                throw IdentityError("cannot write \(path)")
            }
            // createFile keeps an existing file's mode: make sure a key is 0600 whatever was there.
            if file.isKey { try? fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
        }
    }

    /// Reads the trust anchor, the issuer and its key from `directory` (the anchor's key is not needed).
    public static func load(from directory: String) throws(IdentityError) -> IdentityAuthority {
        func read(_ file: File) throws(IdentityError) -> String {
            let path = directory + "/" + file.rawValue
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw IdentityError("cannot read \(path) (create the authority with `meshproxy identity init --dir \(directory)`)")
            }
            return text
        }
        do {
            let anchor = try Certificate(pemEncoded: try read(.anchor))
            let issuer = try Certificate(pemEncoded: try read(.issuer))
            let key = try P256.Signing.PrivateKey(pemRepresentation: try read(.issuerKey))
            guard issuer.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw IdentityError("\(directory)/issuer.key does not belong to issuer.crt")
            }
            let domain = anchor.subject.description.split(separator: "root.linkerd.").last.map { String($0) } ?? "cluster.local"
            return IdentityAuthority(trustDomain: domain, trustAnchor: anchor, issuer: issuer, issuerKey: key, anchorKey: nil)
        } catch let e as IdentityError {
            throw e
        } catch {
            throw IdentityError("\(directory): \(error)")
        }
    }

    /// The name the identity service's own certificate carries, and proxies check when they
    /// connect to it (`identity.linkerd.DOMAIN`, as linkerd-identity's).
    public static func identityServiceName(trustDomain: String) -> String { "identity.linkerd.\(trustDomain)" }
    public var identityServiceName: String { Self.identityServiceName(trustDomain: trustDomain) }

    /// Linkerd's identity name for a workload's service account.
    public func identityName(serviceAccount: String, namespace: String) -> String {
        Self.identityName(serviceAccount: serviceAccount, namespace: namespace, trustDomain: trustDomain)
    }

    /// A short-lived leaf for `name` and a key made here (tests and tools; proxies send a CSR to
    /// the identity service instead, and keep their key).
    public func issue(_ name: String, validFor seconds: TimeInterval, now: Date = Date()) throws(IdentityError) -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        do {
            let leaf = try issueCertificate(name, publicKey: .init(key.publicKey), validFor: seconds, now: now)
            return try WorkloadIdentity(name: name, leaf: leaf, key: key, issuer: issuer, trustAnchor: trustAnchor)
        } catch let e as IdentityError {
            throw e
        } catch {
            throw IdentityError("cannot issue a certificate for \(name): \(error)")
        }
    }

    /// A short-lived leaf for `name` and `publicKey`, signed by the issuer (what linkerd-identity
    /// signs for a proxy's CSR).
    func issueCertificate(_ name: String, publicKey: Certificate.PublicKey, validFor seconds: TimeInterval, now: Date) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(seconds),
            issuer: issuer.subject, subject: try DistinguishedName { CommonName(name) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames([.dnsName(name)])
            },
            issuerPrivateKey: .init(issuerKey))
    }
}

/// A workload's certificate and key, its chain and the trust anchor, ready for TLS.
public struct WorkloadIdentity: Sendable {
    public let name: String
    public let notValidAfter: Date
    public let notValidBefore: Date
    /// The anchor's SHA-256 fingerprint (hex): proxies that trust each other show the same one.
    public let trustAnchorFingerprint: String
    public let trustAnchorNotValidAfter: Date
    public let issuerNotValidAfter: Date
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey
    let anchor: NIOSSLCertificate

    init(name: String, leaf: Certificate, key: P256.Signing.PrivateKey, issuer: Certificate, trustAnchor: Certificate) throws {
        func der(_ c: Certificate) throws -> [UInt8] {
            var s = DER.Serializer()
            try s.serialize(c)
            return s.serializedBytes
        }
        self.name = name
        notValidAfter = leaf.notValidAfter
        notValidBefore = leaf.notValidBefore
        trustAnchorNotValidAfter = trustAnchor.notValidAfter
        issuerNotValidAfter = issuer.notValidAfter
        let anchorDER = try der(trustAnchor)
        trustAnchorFingerprint = SHA256.hash(data: anchorDER).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        chain = [try NIOSSLCertificate(bytes: try der(leaf), format: .der), try NIOSSLCertificate(bytes: try der(issuer), format: .der)]
        self.key = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        anchor = try NIOSSLCertificate(bytes: anchorDER, format: .der)
    }

    /// The server side of mTLS: presents this identity, requires a client certificate that
    /// chains to the trust anchor (its name is read after the handshake, not matched to a host).
    public func serverContext() throws -> NIOSSLContext {
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.trustRoots = .certificates([anchor])
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = .tlsv13
        return try NIOSSLContext(configuration: c)
    }

    /// The server side of a listener anyone may call (the identity service's): presents this
    /// identity and asks for no client certificate (a proxy has none before it is certified).
    public func listenerContext() throws -> NIOSSLContext {
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.certificateVerification = .none
        c.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: c)
    }

    /// Whether `date` is within the certificate's `notBefore`…`notAfter`.
    public func isValid(at date: Date) -> Bool {
        date >= notValidBefore && date < notValidAfter
    }

    /// The client side: presents this identity; the server must chain to the trust anchor and
    /// carry the identity the destination expects (checked as the TLS host name).
    public func clientContext() throws -> NIOSSLContext {
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateChain = chain.map { .certificate($0) }
        c.privateKey = .privateKey(key)
        c.trustRoots = .certificates([anchor])
        c.certificateVerification = .fullVerification
        c.minimumTLSVersion = .tlsv13
        return try NIOSSLContext(configuration: c)
    }
}

extension NIOSSLCertificate {
    /// The DNS names in the certificate's subject alternative names (a workload's identity).
    public var identityNames: [String] {
        guard let sans = try? _subjectAlternativeNames() else { return [] }
        return sans.compactMap { san in
            guard san.nameType == .dnsName else { return nil }
            return String(decoding: san.contents, as: UTF8.self)
        }
    }
}

/// The TLS client a proxy reaches the identity service with before it has a certificate of its
/// own: no client certificate; the service's must chain to `trustAnchorPEM` and carry the name
/// given to the handler as its host name (`identity.linkerd.DOMAIN`).
public func identityServiceClientContext(trustAnchorPEM: String) throws(IdentityError) -> NIOSSLContext {
    do {
        var c = TLSConfiguration.makeClientConfiguration()
        c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(trustAnchorPEM.utf8)))
        c.certificateVerification = .fullVerification
        c.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: c)
    } catch {
        throw IdentityError("cannot use the trust anchor for the identity service's TLS: \(error)")
    }
}
