import FileMover
import Foundation
import RelocatorCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client of one worker's transfer endpoint (`TransferProtocol`): a connect
/// timeout and a read timeout on an idle connection, so that a lost peer is noticed and never
/// waited on for ever. Connections are kept open and used again through `connections` (nil: one
/// connection per request). To a peer that advertises TLS, over TLS only (`TransferSocket`).
struct TransferClient {
    let address: TransferAddress
    var connections: TransferConnections? = .shared
    var connectTimeout: Duration = .seconds(2)
    var readTimeout: Duration = .seconds(10)
    /// The key the workers share: every request is signed under it.
    var signingKey: TransferSigningKey?
    /// The peer serves its transfers over TLS (its heartbeat says so).
    var tls = false
    /// The certificate authorities trusted (`--transfer-tls-ca`); without them, a peer that wants
    /// TLS is refused (`TLSRefused`).
    var trust: TransferTLSTrust?

    /// An answer: its status, headers (lower-case names) and body.
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers[name.lowercased()] }

        /// The refusal's code of a JSON error body (`{"error": …}`).
        var refusal: String? {
            (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["error"] as? String
                ?? header(TransferProtocol.refusalHeader)
        }
        var message: String {
            ((try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["message"] as? String) ?? "HTTP \(status)"
        }
    }

    /// The peer cannot be reached, or broke off: a network problem, not the move's.
    struct Unreachable: Error, CustomStringConvertible {
        let description: String
        /// Nothing of an answer came: on a connection used again, the endpoint may have closed it
        /// while it was idle.
        var beforeAnswer = false
    }

    /// An answer longer than was asked for: nothing of it is kept.
    struct Oversized: Error, CustomStringConvertible {
        let description: String
    }

    /// One request; the body of the answer is read up to `maximumBody` bytes (a longer one is
    /// `Oversized`). An idle connection to the same endpoint is used again when there is one
    /// (`TransferConnections`); one the endpoint closed meanwhile (nothing of an answer came on it)
    /// is given up and the request sent once more on a new connection.
    func send(_ method: String, _ path: String, headers: [(String, String)], maximumBody: Int = TransferProtocol.maximumRange + 4096) throws -> Answer {
        try refuseUnlessTLSAllowed()
        let request = self.request(method, path, headers: headers)
        if let idle = connections?.take(address, tls: tls) {
            do {
                return try exchange(idle, request, method: method, maximumBody: maximumBody)
            } catch let error as Unreachable where error.beforeAnswer {
                // Closed by the endpoint while it was idle: a request never answered, asked again.
            }
        }
        return try exchange(try connect(), request, method: method, maximumBody: maximumBody)
    }

    /// The request's bytes: its head, signed under the shared key when there is one.
    func request(_ method: String, _ path: String, headers: [(String, String)]) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\n\(connections == nil ? "Connection: close\r\n" : "")Content-Length: 0\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let signingKey {
            func value(_ name: String) -> String { headers.first { $0.0.lowercased() == name.lowercased() }?.1 ?? "" }
            let cid = path.split(separator: "/").dropFirst(TransferProtocol.pathPrefix.split(separator: "/").count).first.map(String.init) ?? ""
            let signature = signingKey.sign(method: method, path: path, cid: cid, gen: value(TransferProtocol.genHeader), range: value(TransferProtocol.rangeHeader))
            head += "\(TransferProtocol.signatureHeader): \(signature)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8)
    }

    /// Sends `request` on `fd` and reads its answer; the connection is closed, or kept for the next
    /// request when the answer was whole, framed by its length, and the endpoint keeps it open.
    private func exchange(_ fd: TransferSocket, _ request: [UInt8], method: String, maximumBody: Int) throws -> Answer {
        var keep = false
        defer {
            if keep, let connections { connections.give(fd, address) } else { fd.close() }
        }
        try sendAll(fd, request)
        let head = try readHead(fd)
        guard let expected = try head.length(method: method, maximumBody: maximumBody, address: address) else {
            // No length: the body ends with the connection.
            var body: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { fd.receive($0) }
                if count == 0 { break }
                guard count > 0 else { throw unreachable(fd, beforeAnswer: false) }
                body += buffer[0..<count]
                guard body.count <= maximumBody else { throw Oversized(description: "\(address): an answer larger than \(maximumBody) bytes") }
            }
            return Answer(status: head.status, headers: head.headers, body: body)
        }
        let body = try [UInt8](unsafeUninitializedCapacity: expected) { bytes, count in
            count = try readBody(fd, into: UnsafeMutableRawBufferPointer(bytes), expected: expected)
        }
        keep = head.keepsConnection || (method == "HEAD" && head.headers["connection"]?.lowercased() != "close")
        return Answer(status: head.status, headers: head.headers, body: body)
    }

    /// Sends all of `bytes`.
    func sendAll(_ fd: TransferSocket, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { fd.send($0) }
            guard count > 0 else {
                throw Unreachable(description: "\(address): the request could not be sent (\(fd.failure?.reason ?? "nothing sent"))", beforeAnswer: true)
            }
            sent += count
        }
    }

    /// An answer's status line and headers.
    struct Head {
        var status: Int
        var headers: [String: String]

        /// The body's length (0 for `HEAD`), nil when the answer names none (it ends with the
        /// connection); `Oversized` beyond `maximumBody`.
        func length(method: String, maximumBody: Int, address: TransferAddress) throws -> Int? {
            guard let length = headers["content-length"] else { return method == "HEAD" ? 0 : nil }
            guard length.count <= 12, let value = Int(length), value >= 0 else {
                throw Unreachable(description: "\(address): an answer of \(length.prefix(20)) bytes")
            }
            guard method == "HEAD" || value <= maximumBody else {
                throw Oversized(description: "\(address): an answer of \(value) bytes, at most \(maximumBody) asked for")
            }
            return method == "HEAD" ? 0 : value
        }

        /// The endpoint keeps the connection open after this answer.
        var keepsConnection: Bool { headers["content-length"] != nil && headers["connection"]?.lowercased() != "close" }
    }

    /// Reads an answer's head and not a byte more (what follows is its body, or the next answer's
    /// on a connection whose requests are pipelined): the bytes waiting are looked at first, and
    /// only those up to the head's end taken.
    func readHead(_ fd: TransferSocket) throws -> Head {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 14)
        while true {
            let count = buffer.withUnsafeMutableBytes { fd.receive($0, peek: true) }
            if count == 0 {
                // (Also what a TLS-only endpoint does with a plaintext request: it closes, sending
                // no alert; the heartbeat that says it speaks TLS is read again meanwhile.)
                throw Unreachable(description: "\(address): the connection closed before an answer", beforeAnswer: head.isEmpty)
            }
            guard count > 0 else { throw unreachable(fd, beforeAnswer: head.isEmpty && !(fd.failure?.timedOut ?? false)) }
            let scanFrom = head.count
            head += buffer[0..<count]
            let end = Self.endOfHeaders(head, from: max(0, scanFrom - 3))
            let take = end.map { $0 - scanFrom } ?? count
            // Taken from the socket: exactly what was looked at, up to the head's end.
            var taken = 0
            while taken < take {
                let got = buffer.withUnsafeMutableBytes { fd.receive(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(take - taken)])) }
                guard got > 0 else { throw unreachable(fd, beforeAnswer: false) }
                taken += got
            }
            if let end {
                let parsed = try Self.headers(head[0..<end])
                return Head(status: parsed.status, headers: parsed.headers)
            }
            guard head.count <= 65536 else { throw Unreachable(description: "\(address): an answer's head longer than 64 KiB") }
        }
    }

    /// Reads exactly `expected` bytes into `buffer` (at least that large), in large pieces.
    func readBody(_ fd: TransferSocket, into buffer: UnsafeMutableRawBufferPointer, expected: Int) throws -> Int {
        precondition(buffer.count >= expected, "room for the body")
        var filled = 0
        while filled < expected {
            let got = fd.receive(UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<expected]))
            if got == 0 { throw Unreachable(description: "\(address): the answer broke off after \(filled) of \(expected) bytes") }
            guard got > 0 else { throw unreachable(fd, beforeAnswer: false) }
            filled += got
        }
        return filled
    }

    /// The failure of a receive that returned less than 0 (`failure`).
    func unreachable(_ fd: TransferSocket, beforeAnswer: Bool) -> Unreachable {
        let reason = fd.failure.map { $0.timedOut ? "no answer within \(readTimeout)" : $0.reason } ?? "no answer"
        return Unreachable(description: "\(address): \(reason)", beforeAnswer: beforeAnswer)
    }

    /// The index after `\r\n\r\n`, nil until it came.
    static func endOfHeaders(_ bytes: [UInt8], from start: Int = 0) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in max(3, start + 3)..<bytes.count where bytes[index - 3] == 13 && bytes[index - 2] == 10 && bytes[index - 1] == 13 && bytes[index] == 10 {
            return index + 1
        }
        return nil
    }

    /// The status and the headers (names in lower case, values trimmed) of an answer's head, read
    /// on its bytes.
    static func headers(_ bytes: ArraySlice<UInt8>) throws -> (status: Int, headers: [String: String]) {
        let carriageReturn: UInt8 = 13, newline: UInt8 = 10, colon: UInt8 = 58, space: UInt8 = 32, tab: UInt8 = 9
        func trimmed(_ part: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            var part = part
            while let first = part.first, first == space || first == tab { part.removeFirst() }
            while let last = part.last, last == space || last == tab || last == carriageReturn { part.removeLast() }
            return part
        }
        var lines = bytes.split(separator: newline, omittingEmptySubsequences: true)[...]
        let statusLine = lines.first.map(trimmed) ?? []
        lines = lines.dropFirst()
        let words = statusLine.split(separator: space, maxSplits: 2)
        guard words.count >= 2, words[1].count == 3, words[1].allSatisfy({ (48...57).contains($0) }),
              let status = Int(String(decoding: words[1], as: UTF8.self)) else {
            throw Unreachable(description: "not an HTTP answer: \(String(decoding: statusLine.prefix(80), as: UTF8.self))")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let separator = line.firstIndex(of: colon) else { continue }
            let name = String(decoding: line[line.startIndex..<separator].map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
            headers[name] = String(decoding: trimmed(line[(separator + 1)...]), as: UTF8.self)
        }
        return (status, headers)
    }

    /// A connected socket with the read timeout set; over TLS (its handshake made) when the peer
    /// wants TLS, refused (`TLSRefused`) when no CA is trusted here.
    func connect() throws -> TransferSocket {
        try refuseUnlessTLSAllowed()
        if tls {
            guard let trust else {
                throw TLSRefused(description: "\(address) serves transfers over TLS, and no --transfer-tls-ca is given here to check its certificate")
            }
            return TransferSocket(tls: try TransferTLSStream.connect(address, trust: trust, connectTimeout: connectTimeout, readTimeout: readTimeout))
        }
        return TransferSocket(fd: try connectPlain())
    }

    /// Refuses (`TLSRefused`) a peer that does not advertise TLS when every peer must speak it
    /// (`--transfer-tls-required`): nothing is sent to it.
    func refuseUnlessTLSAllowed() throws {
        guard !tls, let trust, trust.required else { return }
        throw TLSRefused(description: "\(address) does not advertise TLS (its heartbeat has no \(WorkerField.transferTLS.rawValue)), "
                         + "and --transfer-tls-required is given here: nothing is sent to it in plain HTTP")
    }

    /// A connected plain socket with the read timeout set.
    private func connectPlain() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(address.host, String(address.port), &hints, &found)
        guard code == 0, let first = found else {
            throw Unreachable(description: "\(address): cannot resolve \(address.host) (\(String(cString: gai_strerror(code))))")
        }
        defer { freeaddrinfo(found) }
        var failure = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            if Self.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, within: connectTimeout) {
                var timeout = timeval(tv_sec: Int(readTimeout.components.seconds), tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return fd
            }
            failure = String(cString: strerror(errno))
            close(fd)
        }
        throw Unreachable(description: "\(address): cannot connect (\(failure))")
    }

    /// `connect` that gives up after `timeout` (non-blocking, then `poll`).
    private static func connect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, within timeout: Duration) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, address, length) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else {
            errno = ETIMEDOUT
            return false
        }
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        errno = error
        return error == 0
    }
}

extension TransferClient {
    /// A client of `peer`, over TLS when it advertises TLS.
    init(peer: TransferPeer, signingKey: TransferSigningKey?, trust: TransferTLSTrust?) {
        self.init(address: peer.address, signingKey: signingKey, tls: peer.tls, trust: trust)
    }
}

/// The idle connections to transfer endpoints, kept open after a whole answer for the next
/// request to the same endpoint: a pull's requests, and the next pull's from the same worker, do
/// not each open a connection. One idle longer than `keepIdle` is closed (the endpoint closes its
/// side after a longer while), whichever endpoint it is to (one that restarted on another port, or
/// left, is asked nothing again), and so is one the endpoint closed or wrote to meanwhile.
final class TransferConnections: Sendable {
    static let shared = TransferConnections()
    /// How long a connection stays open unused.
    static let keepIdle: Duration = .seconds(20)
    /// The most idle connections kept to one endpoint.
    static let mostIdle = 8

    private struct Idle {
        let fd: TransferSocket
        let since: ContinuousClock.Instant
    }

    /// How long a connection stays open unused here.
    let keepIdle: Duration
    private let idle = Mutex<[String: [Idle]]>([:])

    init(keepIdle: Duration = TransferConnections.keepIdle) {
        self.keepIdle = keepIdle
    }

    /// How many idle connections are kept, to every endpoint.
    var count: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// An open idle connection to `address` (over TLS or not, as `tls` says), nil when there is none.
    func take(_ address: TransferAddress, tls: Bool = false) -> TransferSocket? {
        let now = ContinuousClock.now
        return idle.withLock { idle -> TransferSocket? in
            while let connection = idle[Self.key(address, tls: tls)]?.popLast() {
                // Readable while idle: closed by the endpoint (or bytes no request asked for).
                if now - connection.since < keepIdle, !connection.fd.isSpoiled { return connection.fd }
                connection.fd.close()
            }
            return nil
        }
    }

    /// Keeps `fd`, whose last answer was read whole, for the next request to `address`; the
    /// connections idle too long, to any endpoint, are closed.
    func give(_ fd: TransferSocket, _ address: TransferAddress) {
        let now = ContinuousClock.now
        let key = Self.key(address, tls: fd.isTLS)
        idle.withLock { idle in
            Self.closeStale(&idle, now: now, keepIdle: keepIdle)
            var kept = idle[key] ?? []
            kept.append(Idle(fd: fd, since: now))
            if kept.count > Self.mostIdle { kept.removeFirst().fd.close() }
            idle[key] = kept
        }
    }

    /// Where the connections to `address` are kept: apart for TLS and plain ones.
    private static func key(_ address: TransferAddress, tls: Bool) -> String {
        tls ? tlsKeyPrefix + address.description : address.description
    }

    /// What a TLS connection's key begins with (an address never does).
    private static let tlsKeyPrefix = "tls "

    /// Closes the connections idle too long, to any endpoint (the worker's maintenance does so
    /// between pulls too).
    func sweep() {
        let now = ContinuousClock.now
        idle.withLock { Self.closeStale(&$0, now: now, keepIdle: keepIdle) }
    }

    private static func closeStale(_ idle: inout [String: [Idle]], now: ContinuousClock.Instant, keepIdle: Duration) {
        for (address, connections) in idle {
            let kept = connections.filter { connection in
                guard now - connection.since < keepIdle else {
                    connection.fd.close()
                    return false
                }
                return true
            }
            if kept.count != connections.count { idle[address] = kept.isEmpty ? nil : kept }
        }
    }
}

/// The ranges of one file asked on one connection, each asked before the one before it is read
/// (HTTP/1.1 pipelining): the endpoint reads and sends the next range while this side writes and
/// records the last, and the connection never waits for a request. The answers come in the order
/// asked. A request the endpoint did not answer (it closed the connection after an answer, saying
/// so or not, or while the connection was idle) is sent again on a new connection; one never
/// answered on a new connection is the endpoint's trouble, thrown.
final class TransferRangeStream {
    let client: TransferClient
    let path: String
    let headers: [(String, String)]
    private var fd: TransferSocket?
    /// The ranges asked and not yet read, in order; `sent` is how many of them went on `fd`.
    private var pending: [(offset: Int64, length: Int)] = []
    private var sent = 0

    init(client: TransferClient, path: String, headers: [(String, String)]) {
        self.client = client
        self.path = path
        self.headers = headers
    }

    deinit { drop() }

    /// How many ranges are asked and not yet read.
    var asked: Int { pending.count }

    /// Asks for `length` bytes from `offset`.
    func ask(offset: Int64, length: Int) throws {
        pending.append((offset, length))
        try sendPending()
    }

    /// The answer to the oldest range asked: its head (and body when it is a refusal), and how
    /// many bytes it brought, each piece passed to `piece` as it arrives (through `buffer`, which
    /// is used again for each). `Oversized` when it holds more than the range asked.
    func next(through buffer: UnsafeMutableRawBufferPointer, piece: (UnsafeRawBufferPointer) throws -> Void) throws -> (answer: TransferClient.Answer, count: Int) {
        guard let range = pending.first else { preconditionFailure("a range is asked before it is read") }
        try sendPending()
        guard let fd else { preconditionFailure("sent on a connection") }
        let head: TransferClient.Head
        do {
            head = try client.readHead(fd)
        } catch let error as TransferClient.Unreachable where error.beforeAnswer && mayAskAgain {
            // Closed by the endpoint while it was idle, or after an answer: asked again on a new connection.
            drop(keepingAsked: true)
            return try next(through: buffer, piece: piece)
        }
        idleBefore = false
        var answer = TransferClient.Answer(status: head.status, headers: head.headers, body: [])
        let count: Int
        do {
            guard let length = try head.length(method: "GET", maximumBody: (200..<300).contains(head.status) ? range.length : 65536,
                                               address: client.address) else {
                throw TransferClient.Unreachable(description: "\(client.address): an answer without its length")
            }
            if (200..<300).contains(head.status) {
                var filled = 0
                while filled < length {
                    let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, length - filled)])
                    filled += try client.readBody(fd, into: part, expected: part.count)
                    try piece(UnsafeRawBufferPointer(part))
                }
                count = filled
            } else {
                answer.body = try [UInt8](unsafeUninitializedCapacity: length) { bytes, filled in
                    filled = try client.readBody(fd, into: UnsafeMutableRawBufferPointer(bytes), expected: length)
                }
                count = 0
            }
        } catch {
            drop()
            throw error
        }
        pending.removeFirst()
        sent -= 1
        answered = true
        if head.keepsConnection { keptOpen = true } else { drop(keepingAsked: true) }
        return (answer, count)
    }

    /// Forgets the ranges asked and closes the connection (they are asked again from the start).
    func reset() {
        drop()
        pending = []
    }

    /// Gives the connection back for another request when no answer is owed on it, else closes it.
    func finish() {
        if let fd, pending.isEmpty, let connections = client.connections {
            connections.give(fd, client.address)
            self.fd = nil
        }
        reset()
    }

    /// The connection was taken idle from the pool, or has answered and stays open: requests are
    /// pipelined on it. (One is sent at a time on a new connection until its first answer says
    /// it stays open: an endpoint that closes after an answer would reset the connection with a
    /// request unread, and the answer could be lost with it.)
    private var keptOpen = false
    /// The connection was taken idle from the pool and has not answered since: failing before an
    /// answer, it was closed by the endpoint while idle, and the requests go on a new one.
    private var idleBefore = false
    /// An answer was read whole on the connection: one that ends before the next answer's first
    /// byte was closed by the endpoint after it (an HTTP/1.1 endpoint may, without saying so).
    private var answered = false
    /// A request not answered at all on this connection may be sent again on a new one: the
    /// connection was idle before, or answered before (each time asked again, an answer came
    /// more).
    private var mayAskAgain: Bool { idleBefore || answered }

    private func sendPending() throws {
        if fd == nil {
            guard !pending.isEmpty else { return }
            try client.refuseUnlessTLSAllowed()
            if let idle = client.connections?.take(client.address, tls: client.tls) {
                fd = idle
                keptOpen = true
                idleBefore = true
            } else {
                fd = try client.connect()
                keptOpen = false
                idleBefore = false
            }
            answered = false
            sent = 0
        }
        guard let fd else { return }
        let until = keptOpen ? pending.count : min(pending.count, 1)
        guard sent < until else { return }
        var bytes: [UInt8] = []
        for range in pending[sent..<until] {
            bytes += client.request("GET", path, headers: headers + [(TransferProtocol.rangeHeader, TransferProtocol.rangeValue(offset: range.offset, length: Int64(range.length)))])
        }
        do {
            try client.sendAll(fd, bytes)
        } catch is TransferClient.Unreachable where mayAskAgain {
            drop(keepingAsked: true)
            return try sendPending()
        }
        sent = until
    }

    private func drop(keepingAsked: Bool = false) {
        fd?.close()
        fd = nil
        sent = 0
        if !keepingAsked { pending = [] }
    }
}
