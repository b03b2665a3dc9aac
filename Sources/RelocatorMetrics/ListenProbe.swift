#if canImport(Glibc)
import Glibc
#endif

/// Tells at once, in one line, why the API or a metrics server could not listen on an address (`cannot listen on
/// 127.0.0.1:8080: address already in use`), by binding it the way the server will and letting
/// it go again.
public enum ListenProbe {
    /// Why an address cannot be listened on, in one line.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Throws `Failure` when `host:port` cannot be bound now.
    public static func check(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(errno)).lowercased())") }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            let code = errno
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)).lowercased())")
        }
    }

    /// True when `host:port` can be bound now.
    public static func isFree(host: String, port: Int) -> Bool {
        do {
            try check(host: host, port: port)
            return true
        } catch {
            return false
        }
    }
}
