/// How file contents are hashed: XXH3-128 (libxxhash, memory speed) by default, SHA-256 where a
/// cryptographic hash is wanted.
public enum ChecksumAlgorithm: String, Sendable, CaseIterable, CustomStringConvertible {
    case xxh128
    case sha256

    /// Hex digits of a digest.
    public var hexLength: Int {
        switch self {
        case .xxh128: return 32
        case .sha256: return 64
        }
    }

    public var description: String { rawValue }

    /// Parses `xxh128` or `sha256`; the error names `setting` and the choices.
    public init(parsing text: String, setting: String) throws {
        guard let algorithm = ChecksumAlgorithm(rawValue: text) else {
            throw ConfigurationError(setting: setting, expected: "one of \(Self.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text.prefix(40))')")
        }
        self = algorithm
    }
}

/// A file's checksum with its algorithm, recorded as `xxh128:<32 hex>` or `sha256:<64 hex>`.
/// Records written before algorithms were named hold a bare 64-hex SHA-256: `init(parsing:)` reads
/// them as `sha256`, so a file published then still verifies.
public struct Checksum: Hashable, Sendable, CustomStringConvertible {
    public let algorithm: ChecksumAlgorithm
    /// Lower-case hex of the digest (XXH3-128 in its canonical big-endian order, as `xxhsum -H2`
    /// prints it).
    public let hex: String

    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let reason: String
        public var description: String { reason }
    }

    public init(algorithm: ChecksumAlgorithm, hex: String) throws(Invalid) {
        let lower = hex.lowercased()
        guard lower.utf8.count == algorithm.hexLength, lower.utf8.allSatisfy(Self.isHexDigit) else {
            throw Invalid(reason: "a \(algorithm) checksum is \(algorithm.hexLength) hex digits (got '\(hex.prefix(80))')")
        }
        self.algorithm = algorithm
        self.hex = lower
    }

    /// Reads `xxh128:<hex>`, `sha256:<hex>` or a bare 64-hex SHA-256.
    public init(parsing text: String) throws(Invalid) {
        guard let colon = text.firstIndex(of: ":") else {
            guard text.utf8.count == ChecksumAlgorithm.sha256.hexLength else {
                throw Invalid(reason: "a checksum is 'xxh128:<32 hex>', 'sha256:<64 hex>' or 64 hex digits (got '\(text.prefix(80))')")
            }
            try self.init(algorithm: .sha256, hex: text)
            return
        }
        let name = String(text[..<colon])
        guard let algorithm = ChecksumAlgorithm(rawValue: name) else {
            throw Invalid(reason: "unknown checksum algorithm '\(name.prefix(40))' (expected \(ChecksumAlgorithm.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        try self.init(algorithm: algorithm, hex: String(text[text.index(after: colon)...]))
    }

    /// `<algorithm>:<hex>`, the form recorded in jobs and in the database.
    public var description: String { "\(algorithm.rawValue):\(hex)" }

    /// The first hex digits, for messages.
    public var short: String { "\(algorithm.rawValue):\(hex.prefix(16))…" }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
