import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Transfers over TLS (`--transfer-tls-cert`, `--transfer-tls-key`, `--transfer-tls-ca`): worker
/// processes on disjoint level directories (as `CrossHostPullTests`), with a CA and certificates
/// made by `openssl` for the test.
@Suite struct CrossHostTLSTests {
    typealias Hosts = CrossHostPullTests.Hosts

    /// The options of a worker that serves over TLS with certificate `name` and trusts CA `ca`.
    static func tls(_ certificates: TestCertificates, _ name: String = "host", ca: String = "ca") -> [String] {
        ["--transfer-tls-cert", certificates.certificate(name), "--transfer-tls-key", certificates.key(name), "--transfer-tls-ca", certificates.ca(ca)]
    }

    /// What a plaintext HTTP request to `address` (`host:port`) gets back before the connection ends.
    static func plaintextAnswer(_ address: String) throws -> [UInt8] {
        let port = try #require(address.firstMatch(of: /^127\.0\.0\.1:(\d+)$/).flatMap { UInt16($0.1) }, "\(address)")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = port.bigEndian
        peer.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let request = Array("HEAD /transfer/v1/contents/1 HTTP/1.1\r\nHost: \(address)\r\nRelocator-Delivery: 1\r\nRelocator-Gen: 1\r\n\r\n".utf8)
        #expect(send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count)
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        return answer
    }

    /// Both workers serve over TLS and trust the CA: a file of several ranges is pulled, proven and
    /// its source removed; the heartbeats say TLS; a plaintext request gets no HTTP answer.
    @Test func aPullOverTLSMovesTheFileAndTheEndpointRefusesPlaintext() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let h = try Hosts()
        defer { h.stop() }
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        let data = CrossHostPullTests.pattern((16 << 20) + 4321, 21)
        try data.write(to: URL(fileURLWithPath: h.bronze + "/over-tls.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "21,over-tls.bin,bronze\n").status == 0)
        try h.start(options: Self.tls(certificates))
        for id in ["archive", "edge"] { #expect(try h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer_tls"]) == "1") }
        #expect(h.cli.stderr("archive").contains("over TLS"), "\(h.cli.stderr("archive"))")

        #expect(try h.cli.run(["enqueue", "--cid", "21", "--count", "20000"]).status == 0)
        try h.waitForCommit([21])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/over-tls.bin")) == data)
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/over-tls.bin"))

        // Plaintext to the TLS endpoint: the handshake fails, nothing is read as a request.
        let answer = try Self.plaintextAnswer(try h.redis(["HGET", h.cli.prefix + "worker:archive", "transfer"]))
        #expect(!answer.starts(with: Array("HTTP/".utf8)), "\(String(decoding: answer, as: UTF8.self))")
        #expect(answer.isEmpty || answer[0] == 0x15, "a TLS alert or nothing: \(answer.prefix(16))")
    }

    /// A puller that cannot trust its peer moves nothing and removes nothing; the job carries the
    /// reason (`transfer_tls`) naming what is wrong — no CA given, a CA that did not sign the
    /// peer's certificate, a certificate for another address — and `why` shows it. Once mended,
    /// the same job moves the file.
    @Test func aPullerThatCannotTrustItsPeerMovesNothingAndSaysWhy() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let h = try Hosts()
        defer { h.stop() }
        try certificates.makeCA("other")
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        try certificates.issue("elsewhere", names: ["IP:10.255.255.1", "DNS:elsewhere.invalid"])
        // Quick retries, and never dead while the configurations are tried one after the other.
        h.cli.environment["RELOCATOR_RETRY_CAP_MS"] = "300"
        h.cli.environment["RELOCATOR_MAX_ATTEMPTS"] = "1000"
        let data = CrossHostPullTests.pattern(70_000, 31)
        try data.write(to: URL(fileURLWithPath: h.bronze + "/kept.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "31,kept.bin,bronze\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        let archiveLevels = ["RELOCATOR_LEVELS": "bronze=\(h.bronze),silver=\(h.silver),gold=\(h.elsewhere)/gold"]

        func startWorker(_ name: String, id: String, _ options: [String], levels: [String: String]) throws -> ChildProcess {
            let process = try h.cli.start(name, h.worker + [id] + options, environment: levels)
            try h.cli.waitUntil("\(name)'s advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
            return process
        }
        func stopWorker(_ process: ChildProcess, id: String) throws {
            process.signal(SIGTERM)
            _ = process.stop(timeout: .seconds(20))
            try h.cli.waitUntil("\(id)'s heartbeat to go") { try h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        func untouched() throws {
            #expect(try Data(contentsOf: URL(fileURLWithPath: h.bronze + "/kept.bin")) == data)
            #expect(!FileManager.default.fileExists(atPath: h.gold + "/kept.bin"))
            #expect(try h.level(31) == "bronze")
        }
        func waitForReason(_ text: String) throws {
            try h.cli.waitUntil("the reason '\(text)'", timeout: .seconds(60)) {
                try h.job(31, "reason") == "transfer_tls" && h.job(31, "last_error").contains(text)
            }
        }

        var archive = try startWorker("archive", id: "archive", Self.tls(certificates), levels: archiveLevels)
        // 1. No CA given to the puller.
        var edge = try startWorker("edge-plain", id: "edge", [], levels: h.edgeLevels)
        #expect(try h.cli.run(["enqueue", "--cid", "31", "--count", "20000"]).status == 0)
        try waitForReason("no --transfer-tls-ca is given here")
        try stopWorker(edge, id: "edge")
        try untouched()
        let why = try h.cli.run(["why", "31"])
        #expect(why.stdout.contains("transfer_tls") && why.stdout.contains("TLS"), "\(why.stdout)")

        // 2. A CA that did not sign the peer's certificate.
        edge = try startWorker("edge-other-ca", id: "edge", Self.tls(certificates, ca: "other"), levels: h.edgeLevels)
        try waitForReason("is not signed by a CA of --transfer-tls-ca")
        try stopWorker(edge, id: "edge")
        try untouched()

        // 3. The peer's certificate is for another address.
        try stopWorker(archive, id: "archive")
        archive = try startWorker("archive-elsewhere", id: "archive", Self.tls(certificates, "elsewhere"), levels: archiveLevels)
        edge = try startWorker("edge-ca", id: "edge", Self.tls(certificates), levels: h.edgeLevels)
        try waitForReason("its certificate does not name 127.0.0.1")
        try stopWorker(archive, id: "archive")
        try untouched()

        // Mended: the same job moves the file.
        archive = try startWorker("archive-mended", id: "archive", Self.tls(certificates), levels: archiveLevels)
        try h.waitForCommit([31])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/kept.bin")) == data)
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/kept.bin"))
        _ = (archive, edge)
    }

    /// With `--transfer-tls-required`, a peer whose heartbeat does not advertise TLS is sent
    /// nothing (it advertises a listener of the test's, which no connection reaches): the job fails
    /// with `transfer_tls` naming the peer, the file stays; `reconcile` with it reports the peer's
    /// levels unverified, with the same reason, and connects to it neither.
    @Test func aPullerThatRequiresTLSSendsNothingToAPeerThatDoesNotAdvertiseIt() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let h = try Hosts()
        defer { h.stop() }
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        h.cli.environment["RELOCATOR_RETRY_CAP_MS"] = "300"
        h.cli.environment["RELOCATOR_MAX_ATTEMPTS"] = "1000"
        // Where the archive says it serves: a listener that never accepts (a request would wait there).
        let (listening, port) = try loopbackSocket()
        defer { close(listening) }
        let advertised = "127.0.0.1:\(port)"

        let data = CrossHostPullTests.pattern(70_000, 51)
        try data.write(to: URL(fileURLWithPath: h.bronze + "/plain.bin"))
        try Data("not moved\n".utf8).write(to: URL(fileURLWithPath: h.bronze + "/still.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "51,plain.bin,bronze\n52,still.bin,gold\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        let archiveLevels = "bronze=\(h.bronze),silver=\(h.silver),gold=\(h.elsewhere)/gold"
        try h.cli.start("archive", h.worker + ["archive", "--transfer-advertise", advertised], environment: ["RELOCATOR_LEVELS": archiveLevels])
        try h.cli.start("edge", h.worker + ["edge", "--transfer-tls-ca", certificates.ca(), "--transfer-tls-required"], environment: h.edgeLevels)
        for id in ["archive", "edge"] {
            try h.cli.waitUntil("\(id)'s advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try h.redis(["HGET", h.cli.prefix + "worker:archive", "transfer_tls"]).isEmpty)
        #expect(try h.cli.run(["enqueue", "--cid", "51", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the reason transfer_tls", timeout: .seconds(60)) {
            try h.job(51, "reason") == "transfer_tls" && h.job(51, "last_error").contains("--transfer-tls-required")
        }
        let error = try h.job(51, "last_error")
        #expect(error.contains("worker archive") && error.contains(advertised) && error.contains("does not advertise TLS"), "\(error)")
        #expect(noConnectionWaits(on: listening), "nothing was sent to the peer")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.bronze + "/plain.bin")) == data)
        #expect(!FileManager.default.fileExists(atPath: h.gold + "/plain.bin"))

        // reconcile, as the edge's host sees it, of a content the database puts on gold (the
        // edge's) and that is not there (it is on the archive's bronze): the archive's levels, which
        // it would be asked about, are unverified, and nothing is sent to it.
        let reconcile = CrossHostReconcileTests()
        let edgeLevels = try #require(h.edgeLevels["RELOCATOR_LEVELS"])
        let run = try reconcile.reconcile(h.cli, edgeLevels, ["--transfer-tls-ca", certificates.ca(), "--transfer-tls-required"])
        #expect(reconcile.kinds(run.byCID[52]) == ["unverified"], "\(run.all)")
        #expect((run.byCID[52]?.first?["detail"] as? String)?.contains("--transfer-tls-required") == true, "\(run.all)")
        #expect(noConnectionWaits(on: listening), "nothing was sent to the peer")
    }

    /// `reconcile` asks a worker that speaks TLS over TLS with `--transfer-tls-ca`; without it, or
    /// with a CA that did not sign the worker's certificate, the levels it serves are unverified,
    /// with the reason.
    @Test func reconcileAsksAWorkerThatSpeaksTLSOnlyWithItsCA() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let h = try Hosts()
        defer { h.stop() }
        try certificates.makeCA("other")
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        // The database says bronze (the archive's); the file is on the edge's gold.
        try Data("misplaced".utf8).write(to: URL(fileURLWithPath: h.gold + "/m.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "41,m.bin,bronze\n").status == 0)
        try h.cli.start("edge", h.worker + ["edge"] + Self.tls(certificates), environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        let reconcile = CrossHostReconcileTests()
        let archiveLevels = "bronze=\(h.bronze),silver=\(h.silver),gold=\(h.elsewhere)/gold"

        let trusted = try reconcile.reconcile(h.cli, archiveLevels, ["--transfer-tls-ca", certificates.ca()])
        #expect(reconcile.kinds(trusted.byCID[41]) == ["wrong_level"], "\(trusted.all)")
        #expect((trusted.byCID[41]?.first?["detail"] as? String)?.contains("is on gold (worker edge at 127.0.0.1:") == true, "\(trusted.all)")

        for (options, reason) in [([String](), "no --transfer-tls-ca is given here"),
                                  (["--transfer-tls-ca", certificates.ca("other")], "is not signed by a CA of --transfer-tls-ca")] {
            let run = try reconcile.reconcile(h.cli, archiveLevels, options)
            #expect(run.status == 2)
            #expect(reconcile.kinds(run.byCID[41]) == ["unverified"], "\(options): \(run.all)")
            #expect((run.byCID[41]?.first?["detail"] as? String)?.contains(reason) == true, "\(options): \(run.all)")
        }
        #expect(try h.level(41) == "bronze")
        #expect(FileManager.default.fileExists(atPath: h.gold + "/m.bin"))
    }

    /// The TLS options: both halves of the endpoint's pair or neither, each file readable and of
    /// its kind, the key the certificate's; one line naming what is wrong, before anything starts.
    @Test func theTLSOptionsAreCheckedBeforeAnythingStarts() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let cli = try ContentsTests.workspace()
        defer { cli.stop() }
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        try certificates.issue("another", names: ["IP:127.0.0.1"])
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        let notPEM = cli.path + "/not-pem"
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: notPEM))
        let listen = ["--transfer-listen", "127.0.0.1:0"]
        let cert = certificates.certificate("host"), key = certificates.key("host"), missing = cli.path + "/no-such.pem"
        let cases: [([String], String)] = [
            (["--transfer-tls-cert", cert, "--transfer-tls-key", key], "--transfer-tls-cert needs --transfer-listen"),
            (["--transfer-tls-ca", certificates.ca()], "--transfer-tls-ca needs --transfer-listen"),
            (listen + ["--transfer-tls-cert", cert], "--transfer-tls-cert needs --transfer-tls-key"),
            (listen + ["--transfer-tls-key", key], "--transfer-tls-key needs --transfer-tls-cert"),
            (listen + ["--transfer-tls-cert", missing, "--transfer-tls-key", key], "--transfer-tls-cert \(missing): cannot be read (No such file or directory)"),
            (listen + ["--transfer-tls-cert", notPEM, "--transfer-tls-key", key], "--transfer-tls-cert \(notPEM)"),
            (listen + ["--transfer-tls-cert", cert, "--transfer-tls-key", notPEM], "--transfer-tls-key \(notPEM) is not a PEM private key"),
            (listen + ["--transfer-tls-cert", cert, "--transfer-tls-key", certificates.key("another")],
             "--transfer-tls-key \(certificates.key("another")) is not the key of --transfer-tls-cert \(cert)"),
            (listen + ["--transfer-tls-ca", missing], "--transfer-tls-ca \(missing): cannot be read (No such file or directory)"),
            (listen + ["--transfer-tls-ca", notPEM], "--transfer-tls-ca \(notPEM)"),
            (listen + ["--transfer-tls-required"], "--transfer-tls-required needs --transfer-tls-ca"),
        ]
        for (options, message) in cases {
            let result = try cli.run(["worker", "--id", "w1", "--metrics-port", "0"] + options)
            #expect(result.status != 0 && result.errorLines.count == 1, "\(options): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(options): \(result.stderr)")
        }
        for (file, message) in [(missing, "--transfer-tls-ca \(missing): cannot be read"), (notPEM, "--transfer-tls-ca \(notPEM)")] {
            let result = try cli.run(["reconcile", "--transfer-tls-ca", file])
            #expect(result.status == 1 && result.errorLines.count == 1 && result.stderr.contains(message), "\(result.stderr)")
        }
        let required = try cli.run(["reconcile", "--transfer-tls-required"])
        #expect(required.status != 0 && required.errorLines.count == 1 && required.stderr.contains("--transfer-tls-required needs --transfer-tls-ca"),
                "\(required.stderr)")
    }
}
