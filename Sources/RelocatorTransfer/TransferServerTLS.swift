import Foundation
import HummingbirdTLS
import NIOSSL
import RelocatorCore

/// The transfer endpoint's certificate and key (`--transfer-tls-cert`, `--transfer-tls-key`, PEM):
/// with them the endpoint speaks TLS only. Read and checked when the worker starts: a file that
/// cannot be read or parsed, or a key that is not the certificate's, is one line naming it.
public struct TransferServerTLS: Sendable {
    let configuration: TLSConfiguration

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(certificateFile: String, keyFile: String) throws(Invalid) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(try Self.read(certificateFile, option: "--transfer-tls-cert"))
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(description: "--transfer-tls-cert \(certificateFile) is not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw Invalid(description: "--transfer-tls-cert \(certificateFile) holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: try Self.read(keyFile, option: "--transfer-tls-key"), format: .pem)
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(description: "--transfer-tls-key \(keyFile) is not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // The context is made once here to check the pair (the server makes its own from the configuration).
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw Invalid(description: "--transfer-tls-key \(keyFile) is not the key of --transfer-tls-cert \(certificateFile) (\(error))")
        }
        self.configuration = configuration
    }

    private static func read(_ path: String, option: String) throws(Invalid) -> [UInt8] {
        do {
            return try SettingFile.read(path)
        } catch {
            throw Invalid(description: "\(option) \(error)")
        }
    }
}
