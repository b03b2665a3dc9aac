import Foundation
import RelocatorCore
@testable import RelocatorServices
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The transfer client's TLS, against listeners of the test's own: a peer that wants TLS is never
/// asked without a CA; one that does not speak TLS is a refusal (a configuration to mend), one
/// that says nothing within the read timeout the network's trouble.
@Suite struct TransferSocketTests {
    /// A listening socket on 127.0.0.1 and its port.
    static func listener() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &size) == 0 }
        }
        try #require(bound)
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Answers the first connection with `answer` (after reading what came), or keeps it silent
    /// until `done`'s other end is closed; then closes it.
    static func serveOnce(_ listening: Int32, answer: [UInt8]?) -> Thread {
        let thread = Thread {
            let connection = accept(listening, nil, nil)
            guard connection >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = recv(connection, &buffer, buffer.count, 0)
            if let answer {
                _ = send(connection, answer, answer.count, Int32(MSG_NOSIGNAL))
            } else {
                // Silent: waits for the client to give up (its end closes).
                while recv(connection, &buffer, buffer.count, 0) > 0 {}
            }
            close(connection)
        }
        thread.start()
        return thread
    }

    func client(port: Int, trust: TransferTLSTrust?, readTimeout: Duration = .seconds(10)) -> TransferClient {
        var client = TransferClient(peer: TransferPeer(worker: "archive", address: TransferAddress(host: "127.0.0.1", port: port), tls: true),
                                    signingKey: nil, trust: trust)
        client.connections = nil
        client.readTimeout = readTimeout
        return client
    }

    @Test func aPeerThatWantsTLSIsNotAskedWithoutACA() throws {
        let (listening, port) = try Self.listener()
        defer { close(listening) }
        #expect {
            try client(port: port, trust: nil).send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("no --transfer-tls-ca is given here") == true
        }
        // Nothing was sent: no connection waits to be accepted.
        var poller = pollfd(fd: listening, events: Int16(POLLIN), revents: 0)
        #expect(poll(&poller, 1, 0) == 0)
    }

    @Test func aPeerThatAnswersInPlainHTTPIsARefusalAndASilentOneIsUnreachable() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let trust = try TransferTLSTrust(caFile: certificates.ca())

        let (plain, plainPort) = try Self.listener()
        defer { close(plain) }
        _ = Self.serveOnce(plain, answer: Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect {
            try client(port: plainPort, trust: trust).send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("does not speak TLS there") == true
        }

        let (silent, silentPort) = try Self.listener()
        defer { close(silent) }
        _ = Self.serveOnce(silent, answer: nil)
        let started = ContinuousClock.now
        #expect {
            try client(port: silentPort, trust: trust, readTimeout: .seconds(1)).send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.Unreachable)?.description.contains("no TLS handshake within 1") == true
        }
        #expect(ContinuousClock.now - started < .seconds(30), "the read timeout ends the wait")
    }

    /// A plain request answered in TLS (an alert: the endpoint speaks TLS only, and its heartbeat
    /// did not say so) is a refusal, not a network problem waited on.
    @Test func aPlainRequestAnsweredInTLSIsARefusal() throws {
        let (listening, port) = try Self.listener()
        defer { close(listening) }
        _ = Self.serveOnce(listening, answer: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])
        var client = TransferClient(address: TransferAddress(host: "127.0.0.1", port: port))
        client.connections = nil
        #expect {
            try client.send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("answered in TLS") == true
        }
    }

    @Test func aCAFileThatCannotBeReadOrHoldsNoCertificateIsRefusedNamingIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.path + "/no-such.pem", empty = directory.path + "/empty.pem"
        try Data("no certificate here\n".utf8).write(to: URL(fileURLWithPath: empty))
        #expect {
            try TransferTLSTrust(caFile: missing)
        } throws: { error in
            (error as? TransferTLSTrust.Invalid)?.description == "\(missing): cannot be read (No such file or directory)"
        }
        #expect {
            try TransferTLSTrust(caFile: empty)
        } throws: { error in
            (error as? TransferTLSTrust.Invalid)?.description.hasPrefix(empty) == true
        }
    }
}
