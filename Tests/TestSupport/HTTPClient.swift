import Foundation

/// A response from the API under test.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: String

    /// The body parsed as JSON.
    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }
}

/// A minimal blocking HTTP/1.1 client over a loopback socket, enough to talk to the API under test
/// without pulling an HTTP client library into the tests.
public enum HTTP {
    public static func get(_ port: Int, _ path: String, headers: [String: String] = [:]) throws -> HTTPResult {
        try request(port, "GET", path, body: nil, headers: headers)
    }

    public static func postForm(_ port: Int, _ path: String, _ fields: [(String, String)], headers: [String: String] = [:]) throws -> HTTPResult {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = fields.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&")
        return try request(port, "POST", path, body: Data(body.utf8),
                           headers: headers.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a })
    }

    public static func postJSON(_ port: Int, _ path: String, _ json: String, headers: [String: String] = [:]) throws -> HTTPResult {
        try request(port, "POST", path, body: Data(json.utf8), headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a })
    }

    public static func request(_ port: Int, _ method: String, _ path: String, body: Data?, headers: [String: String] = [:]) throws -> HTTPResult {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        var outgoing = Data(head.utf8)
        if let body { outgoing.append(body) }
        try outgoing.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if written <= 0 { throw POSIXError(.EPIPE) }
                offset += written
            }
        }
        var incoming = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            incoming.append(contentsOf: buffer[0..<count])
        }
        return try parse(incoming)
    }

    static func parse(_ data: Data) throws -> HTTPResult {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw POSIXError(.EBADMSG) }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, statusLine.split(separator: " ").count >= 2,
              let status = Int(statusLine.split(separator: " ")[1]) else { throw POSIXError(.EBADMSG) }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var decoded = Data()
            var rest = body[...]
            while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
                let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
                if size == 0 { break }
                let start = lineEnd.upperBound
                decoded.append(rest[start..<start + size])
                rest = rest[(start + size + 2)...]
            }
            body = decoded
        }
        return HTTPResult(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }
}
