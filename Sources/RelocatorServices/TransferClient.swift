import FileMover
import Foundation
import RelocatorCore
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client of one worker's transfer endpoint (`TransferProtocol`): one
/// connection per request, a connect timeout and a read timeout on an idle connection, so that a
/// lost peer is noticed and never waited on for ever.
struct TransferClient {
    let address: TransferAddress
    var connectTimeout: Duration = .seconds(2)
    var readTimeout: Duration = .seconds(10)
    /// The key the workers share: every request is signed under it.
    var signingKey: TransferSigningKey?

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
    }

    /// An answer longer than was asked for: nothing of it is kept.
    struct Oversized: Error, CustomStringConvertible {
        let description: String
    }

    /// One request; the body of the answer is read up to `maximumBody` bytes (a longer one is
    /// `Oversized`).
    func send(_ method: String, _ path: String, headers: [(String, String)], maximumBody: Int = TransferProtocol.maximumRange + 4096) throws -> Answer {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\nContent-Length: 0\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let signingKey {
            func value(_ name: String) -> String { headers.first { $0.0.lowercased() == name.lowercased() }?.1 ?? "" }
            let cid = path.split(separator: "/").dropFirst(TransferProtocol.pathPrefix.split(separator: "/").count).first.map(String.init) ?? ""
            let signature = signingKey.sign(method: method, path: path, cid: cid, gen: value(TransferProtocol.genHeader), range: value("Range"))
            head += "\(TransferProtocol.signatureHeader): \(signature)\r\n"
        }
        head += "\r\n"
        let request = Array(head.utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw Unreachable(description: "\(address): the request could not be sent (\(String(cString: strerror(errno))))") }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var headerEnd: Int?
        var expected: Int?
        while true {
            if let headerEnd, let expected, received.count - headerEnd >= expected { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else {
                let reason = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within \(readTimeout)" : String(cString: strerror(errno))
                throw Unreachable(description: "\(address): \(reason)")
            }
            received += buffer[0..<count]
            if headerEnd == nil, let end = Self.endOfHeaders(received) {
                headerEnd = end
                let parsed = try Self.headers(received[0..<end])
                if let length = parsed.headers["content-length"] {
                    guard length.count <= 12, let value = Int(length), value >= 0 else {
                        throw Unreachable(description: "\(address): an answer of \(length.prefix(20)) bytes")
                    }
                    guard method == "HEAD" || value <= maximumBody else {
                        throw Oversized(description: "\(address): an answer of \(value) bytes, at most \(maximumBody) asked for")
                    }
                    expected = method == "HEAD" ? 0 : value
                } else if method == "HEAD" {
                    expected = 0
                }
            }
            guard received.count <= maximumBody + 65536 else { throw Oversized(description: "\(address): an answer larger than \(maximumBody) bytes") }
        }
        guard let headerEnd else { throw Unreachable(description: "\(address): the connection closed before an answer") }
        let (status, fields) = try Self.headers(received[0..<headerEnd])
        let body = Array(received[headerEnd...])
        if let expected, body.count < expected {
            throw Unreachable(description: "\(address): the answer broke off after \(body.count) of \(expected) bytes")
        }
        return Answer(status: status, headers: fields, body: body)
    }

    /// The index after `\r\n\r\n`, nil until it came.
    static func endOfHeaders(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count where bytes[index - 3] == 13 && bytes[index - 2] == 10 && bytes[index - 1] == 13 && bytes[index] == 10 {
            return index + 1
        }
        return nil
    }

    static func headers(_ bytes: ArraySlice<UInt8>) throws -> (status: Int, headers: [String: String]) {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let words = lines.first?.split(separator: " ") ?? []
        guard words.count >= 2, words[1].count == 3, let status = Int(words[1]) else {
            throw Unreachable(description: "not an HTTP answer: \(lines.first?.prefix(80) ?? "")")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// A connected socket with the read timeout set.
    private func connect() throws -> Int32 {
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
