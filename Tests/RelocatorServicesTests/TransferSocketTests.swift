import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import RelocatorCore
@testable import RelocatorServices
import Testing
import Synchronization
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The transfer client's TLS, against listeners of the test's own: a peer that wants TLS is never
/// asked without a CA; one that does not speak TLS is a refusal (a configuration to mend), one
/// that says nothing within the read timeout the network's trouble.
@Suite struct TransferSocketTests {
    /// Answers the first connection with `answer` (after reading what came), or keeps it silent
    /// until the client closes its end; then closes it. The thread, to wait for its end.
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
        let (listening, port) = try loopbackSocket()
        defer { close(listening) }
        #expect {
            try client(port: port, trust: nil).send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("no --transfer-tls-ca is given here") == true
        }
        #expect(noConnectionWaits(on: listening), "nothing was sent")
    }

    @Test func aPeerThatAnswersInPlainHTTPIsARefusalAndASilentOneIsUnreachable() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let trust = try TransferTLSTrust(caFile: certificates.ca())

        let (plain, plainPort) = try loopbackSocket()
        defer { close(plain) }
        _ = Self.serveOnce(plain, answer: Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect {
            try client(port: plainPort, trust: trust).send("HEAD", TransferProtocol.contentPath(1), headers: [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("does not speak TLS there") == true
        }

        let (silent, silentPort) = try loopbackSocket()
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

    /// A TLS peer that sends far more than is taken (pipelined ranges while the puller pays for
    /// bandwidth or fsyncs, or a peer that sends without end) grows nothing beyond the inbox's
    /// bound: the client reads no more from its socket until bytes are taken, and the peer is held
    /// back by the kernel's buffers. Taken, every byte comes, in order.
    @Test func aTLSPeerThatSendsMoreThanIsTakenIsHeldBackByTheBound() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        let total = 64 << 20
        let flood = try FloodingServer(certificate: certificates.certificate("host"), key: certificates.key("host"), total: total)
        defer { flood.stop() }
        var client = TransferClient(peer: TransferPeer(worker: "archive", address: TransferAddress(host: "127.0.0.1", port: flood.port), tls: true),
                                    signingKey: nil, trust: try TransferTLSTrust(caFile: certificates.ca()))
        client.connections = nil
        let socket = try client.connect()
        defer { socket.close() }
        let stream = try #require(socket.tls)

        // Nothing is taken: the client stops reading at its bound, and the peer's socket fills.
        // (Without the bound, the client reads all it is sent: the peer sends the whole of it.)
        try waitUntil("the client stops reading and the peer is held back, or the peer sent all", timeout: .seconds(60)) {
            (!stream.inbox.state.reading && flood.blocked) || flood.sent == total
        }
        let held = stream.inbox.state
        #expect(!held.reading && held.buffered >= TransferTLSStream.readAhead)
        #expect(held.peak <= TransferTLSStream.mostBuffered, "\(held.peak) bytes waited")
        #expect(flood.sent < total)

        // Taken: the rest comes, in order, and the bound holds all along.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var received = 0
        var equal = true
        while true {
            let count = socket.receive(buffer)
            try #require(count >= 0, "\(socket.failure?.reason ?? "")")
            if count == 0 { break }
            equal = equal && flood.matches(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: received)
            received += count
        }
        #expect(received == total)
        #expect(equal, "the bytes came as sent")
        #expect(stream.inbox.state.peak <= TransferTLSStream.mostBuffered, "\(stream.inbox.state.peak) bytes waited")
    }
}

extension TransferSocketTests {
    /// A TLS connection dropped without `close()` is closed with its last reference: its channel
    /// does not live on in the event loop.
    @Test func aTLSConnectionDroppedUnclosedIsClosed() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        try certificates.issue("host", names: ["IP:127.0.0.1"])
        // A peer that sends nothing.
        let silent = try FloodingServer(certificate: certificates.certificate("host"), key: certificates.key("host"), total: 0)
        defer { silent.stop() }
        var client = TransferClient(peer: TransferPeer(worker: "archive", address: TransferAddress(host: "127.0.0.1", port: silent.port), tls: true),
                                    signingKey: nil, trust: try TransferTLSTrust(caFile: certificates.ca()))
        client.connections = nil
        var socket: TransferSocket? = try client.connect()
        let stream = try #require(socket?.tls)
        #expect(!stream.isSpoiled)
        socket = nil
        try waitUntil("the dropped connection's channel to close", timeout: .seconds(30)) { stream.isSpoiled }
    }
}

/// A TLS server of the test's own (NIO, a certificate of `TestCertificates`): on its first
/// connection it sends `total` bytes (a repeated random block) as fast as the connection takes
/// them, then closes it; it says how many it has handed to the connection, and whether the
/// connection is full (the peer reads nothing more).
final class FloodingServer: Sendable {
    let port: Int
    private let channel: any Channel
    let block: [UInt8]

    init(certificate: String, key: String, total: Int) throws {
        var random = SystemRandomNumberGenerator()
        block = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let block = self.block
        let progress = Progress()
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try child.pipeline.syncOperations.addHandler(Sender(block: block, total: total, progress: progress))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        guard let port = channel.localAddress?.port else { throw NoPort() }
        self.port = port
        self.progressBox = progress
    }

    private let progressBox: Progress

    struct NoPort: Error {}

    final class Progress: Sendable {
        let value = Mutex<(sent: Int, blocked: Bool)>((0, false))
    }

    var sent: Int { progressBox.value.withLock { $0.sent } }
    var blocked: Bool { progressBox.value.withLock { $0.blocked } }

    /// True when `bytes` are the ones sent from `offset`.
    func matches(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var index = 0
        while index < bytes.count {
            let at = (offset + index) % block.count
            let count = min(bytes.count - index, block.count - at)
            let same = block.withUnsafeBytes { memcmp($0.baseAddress! + at, bytes.baseAddress! + index, count) == 0 }
            guard same else { return false }
            index += count
        }
        return true
    }

    func stop() {
        _ = try? channel.close().wait()
    }

    /// Sends once the handshake is made, a piece at a time while the connection takes them.
    final class Sender: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let block: [UInt8]
        let total: Int
        let progress: Progress
        var sent = 0

        init(block: [UInt8], total: Int, progress: Progress) {
            self.block = block
            self.total = total
            self.progress = progress
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { pump(context) }
            context.fireUserInboundEventTriggered(event)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            pump(context)
            context.fireChannelWritabilityChanged()
        }

        private func pump(_ context: ChannelHandlerContext) {
            let piece = 64 << 10
            while context.channel.isWritable && sent < total {
                let at = sent % block.count
                let count = min(piece, total - sent, block.count - at)
                let buffer = context.channel.allocator.buffer(bytes: block[at..<(at + count)])
                sent += count
                if sent == total {
                    let channel = context.channel
                    context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
                } else {
                    context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
                }
            }
            let (sent, blocked) = (sent, !context.channel.isWritable)
            progress.value.withLock { $0 = (sent, blocked) }
        }
    }
}
