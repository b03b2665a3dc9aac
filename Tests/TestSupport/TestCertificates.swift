import Foundation

/// A certificate authority and certificates signed by it, made with the `openssl` command line in
/// a private temporary directory (mode 0700), removed by `remove()`.
public struct TestCertificates: Sendable {
    public let directory: TemporaryDirectory
    public var path: String { directory.path }

    /// A new CA, `<name>-ca.pem` (its key beside it) in a new directory.
    public init(ca name: String = "ca") throws {
        directory = try TemporaryDirectory("relocator-tls")
        do {
            guard chmod(directory.path, 0o700) == 0 else { throw Failure(description: "chmod \(directory.path)") }
            try makeCA(name)
        } catch {
            directory.remove()
            throw error
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func ca(_ name: String = "ca") -> String { path + "/\(name)-ca.pem" }
    public func certificate(_ name: String) -> String { path + "/\(name).pem" }
    public func key(_ name: String) -> String { path + "/\(name)-key.pem" }

    /// Another CA in the same directory.
    public func makeCA(_ name: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                     "-subj", "/CN=relocator test \(name)", "-keyout", path + "/\(name)-ca-key.pem", "-out", ca(name)])
    }

    /// A certificate `<name>.pem` and its key `<name>-key.pem`, signed by CA `ca`, for the subject
    /// alternative names `names` (`IP:127.0.0.1`, `DNS:localhost`).
    public func issue(_ name: String, names: [String], by ca: String = "ca") throws {
        let extensions = path + "/\(name).ext"
        try Data("subjectAltName=\(names.joined(separator: ","))\nextendedKeyUsage=serverAuth\n".utf8)
            .write(to: URL(fileURLWithPath: extensions))
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(name)",
                     "-keyout", key(name), "-out", path + "/\(name).csr"])
        try openssl(["x509", "-req", "-in", path + "/\(name).csr", "-CA", self.ca(ca), "-CAkey", path + "/\(ca)-ca-key.pem",
                     "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", certificate(name)])
    }

    public func remove() { directory.remove() }

    private func openssl(_ arguments: [String]) throws {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/openssl"), arguments, currentDirectory: directory.url)
        guard result.status == 0 else { throw Failure(description: "openssl \(arguments.prefix(2).joined(separator: " ")): \(result.stderr)") }
    }
}
