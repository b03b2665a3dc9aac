import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import RelocatorCore
#if canImport(Glibc)
import Glibc
#endif

/// The certificate authorities a transfer client trusts (`--transfer-tls-ca`, a PEM bundle): a
/// peer that advertises TLS is reached over TLS only, and its certificate must chain to one of
/// them and name the address it is reached at (an IP address SAN for an address, a DNS name for
/// a host name).
public struct TransferTLSTrust: Sendable {
    /// The file the authorities came from (named in failures).
    public let file: String
    let context: NIOSSLContext
    /// Every peer is reached over TLS (`--transfer-tls-required`): one whose heartbeat does not
    /// advertise TLS is refused (`TransferClient.TLSRefused`) and sent nothing, neither a delivery's
    /// secret nor a request.
    public var required = false

    /// A file that cannot be read, holds no certificate or one that does not parse: one line naming it.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(caFile: String) throws(Invalid) {
        file = caFile
        let bytes: [UInt8]
        do {
            bytes = try SettingFile.read(caFile)
        } catch {
            throw Invalid(description: "\(error)")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw Invalid(description: "\(caFile) is not a PEM bundle of certificates (\(error))")
        }
        guard !certificates.isEmpty else { throw Invalid(description: "\(caFile) holds no PEM certificate") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(certificates)
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw Invalid(description: "\(caFile): \(error)")
        }
    }

}

extension TransferClient {
    /// TLS with a peer failed for a reason of configuration or trust, not of the network: this
    /// process has no CA for a peer that wants TLS, the peer's certificate is not signed by a CA
    /// trusted here or does not name the address it is reached at, or the peer does not speak TLS.
    /// Asking again changes nothing until an operator mends it.
    struct TLSRefused: Error, CustomStringConvertible {
        let description: String
    }
}

/// One connection to a transfer endpoint as the blocking client reads and writes it: a plain
/// socket, or TLS over one (`TransferTLSStream`). Sends and receives give what `send`/`recv` give
/// (a count, 0 at the end of the stream, less than 0 on failure, with `failure` saying why).
final class TransferSocket: @unchecked Sendable {
    private enum Kind {
        case plain(Int32)
        case tls(TransferTLSStream)
    }

    private let kind: Kind
    private var closed = false
    /// Why the last send or receive failed, and whether it was the read timeout.
    private(set) var failure: (reason: String, timedOut: Bool)?

    init(fd: Int32) {
        kind = .plain(fd)
    }

    init(tls: TransferTLSStream) {
        kind = .tls(tls)
    }

    /// The connection is this socket's alone (its descriptor, or its TLS channel with its buffers
    /// in an event loop): one dropped without `close()` is closed with the last reference.
    deinit { close() }

    /// True for a TLS connection.
    var isTLS: Bool { tls != nil }

    /// The TLS connection, nil for a plain one.
    var tls: TransferTLSStream? {
        if case .tls(let stream) = kind { return stream }
        return nil
    }

    /// Sends some of `bytes`: how many went.
    func send(_ bytes: UnsafeRawBufferPointer) -> Int {
        switch kind {
        case .plain(let fd):
            let count = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if count <= 0 { failure = (String(cString: strerror(errno)), errno == EAGAIN || errno == EWOULDBLOCK) }
            return count
        case .tls(let stream):
            do {
                try stream.send(bytes)
                return bytes.count
            } catch {
                failure = (error.description, error.timedOut)
                return -1
            }
        }
    }

    /// Receives into `buffer` what came, waiting for something up to the read timeout; `peek`
    /// leaves it to be received again.
    func receive(_ buffer: UnsafeMutableRawBufferPointer, peek: Bool = false) -> Int {
        switch kind {
        case .plain(let fd):
            let count = recv(fd, buffer.baseAddress, buffer.count, peek ? Int32(MSG_PEEK) : 0)
            if count < 0 { failure = (String(cString: strerror(errno)), errno == EAGAIN || errno == EWOULDBLOCK) }
            return count
        case .tls(let stream):
            do {
                return try stream.receive(buffer, peek: peek)
            } catch {
                failure = (error.description, error.timedOut)
                return -1
            }
        }
    }

    /// Idle and yet closed by the peer, or holding bytes no request asked for: not to be used again.
    var isSpoiled: Bool {
        switch kind {
        case .plain(let fd):
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&poller, 1, 0) != 0
        case .tls(let stream):
            return stream.isSpoiled
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        switch kind {
        case .plain(let fd): _ = Glibc.close(fd)
        case .tls(let stream): stream.close()
        }
    }
}

/// TLS to one transfer endpoint, written and read from a blocking thread: swift-nio-ssl's client
/// handler on a NIO channel (the shared event loops), whose plaintext the channel hands to this
/// side as it comes. The handshake is made on connecting, so that a certificate refused is known
/// before anything is asked; a read waits at most the read timeout for bytes, as on a plain socket.
///
/// The channel reads from its socket only while fewer than `readAhead` bytes wait here (its
/// automatic reading is off): a peer that sends more than is taken (pipelined ranges while a range
/// is paid for or fsynced, or one that sends without end) is held back by the kernel's buffers, as
/// over a plain socket, and never grows this process's memory beyond `mostBuffered`.
final class TransferTLSStream: @unchecked Sendable {
    private let channel: any Channel
    let inbox: Inbox
    private let readTimeout: Duration

    /// The channel asks its socket for more only while fewer bytes than this wait to be taken.
    static let readAhead = 256 << 10
    /// The most bytes one read of the socket brings (`readsPerRequest` of them to one request).
    static let readPiece = 64 << 10
    static let readsPerRequest = 4
    /// The most plaintext bytes that ever wait to be taken: below `readAhead` when the last read is
    /// asked, then what it brings (the ciphertext of its socket reads, and a record begun before).
    static let mostBuffered = readAhead + readsPerRequest * readPiece + (16 << 10)

    struct Failure: Error, CustomStringConvertible {
        let description: String
        var timedOut = false
    }

    private init(channel: any Channel, inbox: Inbox, readTimeout: Duration) {
        self.channel = channel
        self.inbox = inbox
        self.readTimeout = readTimeout
    }

    /// Connects to `address` within `connectTimeout` and makes the handshake within `readTimeout`.
    /// `Unreachable` for the network's trouble, `TLSRefused` for a certificate refused or a peer
    /// that does not speak TLS.
    static func connect(_ address: TransferAddress, trust: TransferTLSTrust, connectTimeout: Duration,
                        readTimeout: Duration) throws -> TransferTLSStream {
        let inbox = Inbox()
        // An address is matched with the certificate's IP address names (the peer's address the
        // channel connected to); a host name with its DNS names (and sent as SNI).
        let hostname: String? = isAddress(address.host) ? nil : address.host
        let context = trust.context
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Read as the inbox asks (`Inbox.readMore`), in pieces of known size.
            .channelOption(.autoRead, value: false)
            .channelOption(.maxMessagesPerRead, value: UInt(readsPerRequest))
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: readPiece))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: hostname))
                    try channel.pipeline.syncOperations.addHandler(InboxHandler(inbox: inbox))
                }
            }
        let channel: any Channel
        let connecting = bootstrap.connect(host: address.host, port: address.port)
        switch Waiter.wait(for: connecting, within: connectTimeout + .seconds(1)) {
        case .success(let connected): channel = connected
        case .failure(let error):
            throw TransferClient.Unreachable(description: "\(address): cannot connect (\(connectProblem(error)))")
        case nil:
            // (NIO's own connect timeout ends it first; one made after all is closed.)
            connecting.whenSuccess { $0.close(promise: nil) }
            throw TransferClient.Unreachable(description: "\(address): cannot connect (\(ETIMEDOUT.errorText))")
        }
        let stream = TransferTLSStream(channel: channel, inbox: inbox, readTimeout: readTimeout)
        switch inbox.handshake(until: .now + readTimeout) {
        case .done:
            return stream
        case .timedOut:
            stream.close()
            throw TransferClient.Unreachable(description: "\(address): no TLS handshake within \(readTimeout)")
        case .ended:
            stream.close()
            throw TransferClient.Unreachable(description: "\(address): the connection closed during the TLS handshake")
        case .failed(let error):
            stream.close()
            if let refusal = refusal(of: error, address: address, trust: trust) { throw refusal }
            throw TransferClient.Unreachable(description: "\(address): the TLS handshake broke off (\(error))")
        }
    }

    /// The refusal a handshake's error is, nil when it is the network's (a reset, a broken record).
    static func refusal(of error: any Error, address: TransferAddress, trust: TransferTLSTrust) -> TransferClient.TLSRefused? {
        let text = String(describing: error)
        let why: String
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            why = "its certificate does not name \(address.host) (neither as an IP address nor as a DNS name)"
        } else if text.contains("CERTIFICATE_VERIFY_FAILED") {
            why = "its certificate is not signed by a CA of --transfer-tls-ca \(trust.file), or has expired"
        } else if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG")
                    || text.contains("UNEXPECTED_RECORD") {
            why = "it does not speak TLS there"
        } else if case .handshakeFailed = error as? NIOSSLError {
            why = "the TLS handshake failed (\(text.prefix(300)))"
        } else {
            return nil
        }
        return TransferClient.TLSRefused(description: "\(address) refused over TLS: \(why)")
    }

    /// Sends all of `bytes` within the read timeout.
    func send(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        let buffer = channel.allocator.buffer(bytes: bytes)
        switch Waiter.wait(for: channel.writeAndFlush(buffer), within: readTimeout) {
        case .success: return
        case .failure(let error): throw Failure(description: inbox.problem ?? "\(error)")
        case nil: throw Failure(description: "the request was not taken within \(readTimeout)", timedOut: true)
        }
    }

    /// What came (at most `buffer.count` bytes), waiting up to the read timeout; 0 at the end.
    func receive(_ buffer: UnsafeMutableRawBufferPointer, peek: Bool) throws(Failure) -> Int {
        let (count, readMore) = try inbox.take(into: buffer, peek: peek, until: .now + readTimeout, timeout: readTimeout)
        // Taken below `readAhead` while the channel waited: it reads again.
        if readMore { channel.read() }
        return count
    }

    var isSpoiled: Bool { !channel.isActive || inbox.isSpoiled }

    func close() {
        channel.close(promise: nil)
    }

    /// True for an IPv4 or IPv6 address (not a host name).
    static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Why a connection was not made, in a few words.
    private static func connectProblem(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            if let io = first.error as? IOError { return String(cString: strerror(io.errnoCode)) }
            return "\(first.error)"
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return ETIMEDOUT.errorText }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    /// The plaintext the channel received, handed from its event loop to the reading thread.
    final class Inbox: @unchecked Sendable {
        private let condition = MonotonicCondition()
        private var chunks: [ByteBuffer] = []
        private var first = 0
        private var buffered = 0
        private var handshook = false
        private var ended = false
        private var error: (any Error)?
        /// A read of the channel is asked (or about to be): false while it waits for bytes to be taken.
        private var reading = true
        /// The most bytes that waited here at once.
        private var peak = 0

        enum Handshake { case done, timedOut, ended, failed(any Error) }

        func append(_ buffer: ByteBuffer) {
            condition.withLock {
                chunks.append(buffer)
                buffered += buffer.readableBytes
                peak = max(peak, buffered)
                condition.broadcast()
            }
        }

        /// After a read brought its bytes: true when the channel is to read again now (fewer than
        /// `readAhead` bytes wait); else it waits until they are taken (`take` says when).
        func readMore() -> Bool {
            condition.withLock {
                reading = buffered < TransferTLSStream.readAhead
                return reading
            }
        }

        /// How many bytes wait to be taken, the most that ever waited, and whether the channel reads.
        var state: (buffered: Int, peak: Int, reading: Bool) {
            condition.withLock { (buffered, peak, reading) }
        }

        func handshakeCompleted() {
            condition.withLock {
                handshook = true
                condition.broadcast()
            }
        }

        func fail(_ failure: any Error) {
            condition.withLock {
                if error == nil { error = failure }
                condition.broadcast()
            }
        }

        func end() {
            condition.withLock {
                ended = true
                condition.broadcast()
            }
        }

        /// Why the connection failed, when it did (and not by the peer closing it).
        var problem: String? {
            condition.withLock { error.flatMap { Self.isClosure($0) ? nil : "\($0)" } }
        }

        /// Closed, failed or holding bytes.
        var isSpoiled: Bool { condition.withLock { ended || error != nil || buffered > 0 } }

        func handshake(until deadline: ContinuousClock.Instant) -> Handshake {
            condition.withLock {
                while !handshook && error == nil && !ended {
                    guard wait(until: deadline) else { return .timedOut }
                }
                if handshook { return .done }
                if let error { return .failed(error) }
                return .ended
            }
        }

        /// What waits (at most `buffer.count` bytes), waiting for something until `deadline`; and
        /// whether the channel is to be asked to read again (it had stopped at `readAhead`, and
        /// fewer bytes wait now).
        func take(into buffer: UnsafeMutableRawBufferPointer, peek: Bool, until deadline: ContinuousClock.Instant,
                  timeout: Duration) throws(Failure) -> (count: Int, readMore: Bool) {
            condition.lock()
            defer { condition.unlock() }
            while buffered == 0 && error == nil && !ended {
                guard wait(until: deadline) else { throw Failure(description: "no answer within \(timeout)", timedOut: true) }
            }
            guard buffered > 0 else {
                // A peer that closed without TLS's closing message ends the stream as a socket's end does.
                if let error, !Self.isClosure(error) { throw Failure(description: "\(error)") }
                return (0, false)
            }
            var copied = 0
            var index = first
            while copied < buffer.count && index < chunks.count {
                let chunk = chunks[index]
                let count = min(chunk.readableBytes, buffer.count - copied)
                chunk.withUnsafeReadableBytes { bytes in
                    (buffer.baseAddress! + copied).copyMemory(from: bytes.baseAddress!, byteCount: count)
                }
                copied += count
                if !peek {
                    chunks[index].moveReaderIndex(forwardBy: count)
                    if chunks[index].readableBytes == 0 { first += 1 }
                }
                index += 1
            }
            if !peek {
                buffered -= copied
                if first == chunks.count || first > 64 {
                    chunks.removeFirst(first)
                    first = 0
                }
            }
            guard !reading, buffered < TransferTLSStream.readAhead, !ended, error == nil else { return (copied, false) }
            reading = true
            return (copied, true)
        }

        /// Waits for a signal until `deadline`; false once it passed.
        private func wait(until deadline: ContinuousClock.Instant) -> Bool {
            let left = deadline - .now
            guard left > .zero else { return false }
            _ = condition.wait(until: MonotonicCondition.deadline(after: left))
            return true
        }

        /// The peer closed the connection (with or without TLS's closing message).
        static func isClosure(_ error: any Error) -> Bool {
            if case .uncleanShutdown = error as? NIOSSLError { return true }
            if let error = error as? ChannelError, error == .eof || error == .alreadyClosed || error == .ioOnClosedChannel { return true }
            return false
        }
    }

    /// Passes the channel's plaintext, its handshake, failures and end to the inbox.
    final class InboxHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let inbox: Inbox

        init(inbox: Inbox) {
            self.inbox = inbox
        }

        func channelActive(context: ChannelHandlerContext) {
            // The first read: the handshake's (the TLS handler reads on while no plaintext came).
            context.read()
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            inbox.append(unwrapInboundIn(data))
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if inbox.readMore() { context.read() }
            context.fireChannelReadComplete()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { inbox.handshakeCompleted() }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            inbox.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.end()
            context.fireChannelInactive()
        }
    }

    /// Waits on a future from a blocking thread, for at most a while.
    enum Waiter {
        final class Box<T: Sendable>: @unchecked Sendable {
            let condition = MonotonicCondition()
            var result: Result<T, any Error>?
        }

        static func wait<T: Sendable>(for future: EventLoopFuture<T>, within timeout: Duration) -> Result<T, any Error>? {
            let box = Box<T>()
            future.whenComplete { result in
                box.condition.withLock {
                    box.result = result
                    box.condition.broadcast()
                }
            }
            let deadline = MonotonicCondition.deadline(after: timeout)
            return box.condition.withLock {
                while box.result == nil {
                    guard box.condition.wait(until: deadline) else { return box.result }
                }
                return box.result
            }
        }
    }
}

extension Int32 {
    /// `strerror` of an errno value.
    fileprivate var errorText: String { String(cString: strerror(self)) }
}
