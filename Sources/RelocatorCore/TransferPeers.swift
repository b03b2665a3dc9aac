/// A `host:port` where a worker serves its levels' files to other workers (`--transfer-listen`,
/// `--transfer-advertise`): a host name, an IPv4 address or a bracketed IPv6 address, and a port
/// from 1 to 65535 (0, "any free port", only where `allowsAnyPort`).
public struct TransferAddress: Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let description: String
    }

    public init(parsing text: String, allowsAnyPort: Bool = false) throws {
        let expected = "expected host:port, e.g. 10.0.0.5:7400 or [fd00::5]:7400"
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw Invalid(description: "\(expected) (got '\(text)')")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw Invalid(description: "\(expected) (got '\(text)')")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, hostPart.count <= 253,
              hostPart.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_:%".unicodeScalars.contains($0) }) else {
            throw Invalid(description: "\(expected): the host '\(hostPart)' is not a host name or an address")
        }
        // Digits only, at most 5 of them: no sign, no overflow.
        guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber),
              let port = Int(portPart), port <= 65535, port >= (allowsAnyPort ? 0 : 1) else {
            throw Invalid(description: "\(expected): the port must be \(allowsAnyPort ? 0 : 1) to 65535 (got '\(portPart)')")
        }
        self.host = String(hostPart)
        self.port = port
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// True for 0.0.0.0 and ::, which other hosts cannot connect to.
    public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }

    /// (The standard library's byte search: every pooled connection is filed under it.)
    public var description: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A live worker that serves a level's files to other workers' transfers.
public struct TransferPeer: Equatable, Sendable {
    public var worker: String
    public var address: TransferAddress
    /// When its heartbeat was last renewed (ms, Redis' clock).
    public var beatAt: Int64?
    /// Its endpoint speaks TLS only.
    public var tls = false

    public init(worker: String, address: TransferAddress, beatAt: Int64? = nil, tls: Bool = false) {
        self.worker = worker
        self.address = address
        self.beatAt = beatAt
        self.tls = tls
    }

    /// The live workers other than `worker` that serve `level` (their heartbeats, which expire
    /// unless renewed, advertise it with a transfer address), the most recently renewed first. A
    /// heartbeat whose address does not parse is passed over.
    public static func serving(_ level: String, among beats: [Heartbeat], excluding worker: String) -> [TransferPeer] {
        beats.compactMap { beat -> TransferPeer? in
            guard beat.id != worker, beat.transferLevels.contains(level), let text = beat.transfer,
                  let address = try? TransferAddress(parsing: text) else { return nil }
            return TransferPeer(worker: beat.id, address: address, beatAt: beat.beatAt, tls: beat.transferTLS)
        }
        .sorted { ($0.beatAt ?? 0, $1.worker) > ($1.beatAt ?? 0, $0.worker) }
    }
}

/// Comparisons of credentials.
public enum ConstantTime {
    /// Two byte strings compared in time that depends on their lengths only.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
