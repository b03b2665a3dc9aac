/// The names of the transfer endpoint a worker serves its levels' files on to other workers
/// (HTTP/1.1): the one place they are spelled, for the server and its clients.
///
/// - `GET /transfer/v1/contents/<cid>` with `Range: bytes=a-b`: bytes of the file the content's
///   job moves from this worker's level, with their checksum and the file's version and size.
/// - `POST /transfer/v1/contents/<cid>/remove` with the copy's checksum: removes the source once
///   proven (docs/CROSSHOST.md).
/// - `GET /transfer/v1/contents/<cid>/inquiry`: which of this worker's levels hold the file a
///   reconcile run asks about (`HostInquiry`), with their sizes.
///
/// Every request names the job's generation and carries the delivery's token and its random secret:
/// the endpoint serves only the job's current delivery.
public enum TransferProtocol {
    public static let pathPrefix = "transfer/v1/contents"

    /// The path of a content's file.
    public static func contentPath(_ cid: Int64) -> String { "/\(pathPrefix)/\(cid)" }
    /// The path of the removal of a content's source.
    public static func removePath(_ cid: Int64) -> String { "/\(pathPrefix)/\(cid)/remove" }
    /// The path of a reconcile run's question about a content's file (`HostInquiry`).
    public static func inquiryPath(_ cid: Int64) -> String { "/\(pathPrefix)/\(cid)/inquiry" }

    /// Request (inquiry): the reconcile run's inquiry token; its secret goes in `secretHeader`.
    public static let inquiryHeader = "Relocator-Inquiry"

    /// Request: the delivery token of the job's current delivery (a credential: never in a URL).
    public static let deliveryHeader = "Relocator-Delivery"
    /// Request: the random secret of the pulling delivery (a credential: never in a URL or a log);
    /// the job holds only its digest (`JobField.transferKey`).
    public static let secretHeader = "Relocator-Secret"
    /// The longest secret the endpoint hashes.
    public static let maximumSecretLength = 128

    /// What a delivery records on its job for its secret: its token and the secret's digest. The
    /// endpoint recomputes it from the request and compares it with the job's in constant time:
    /// a secret recorded by an earlier delivery (another token) is not this one's.
    public static func transferKey(token: String, digest: String) -> String { "\(token):\(digest)" }

    /// Request: the HMAC-SHA256 (hex) of `signedText` under the key the workers share, when they
    /// share one (`--transfer-secret-file`).
    public static let signatureHeader = "Relocator-Signature"

    /// What a request's signature covers: its method, path, content id, generation and range
    /// (empty when it has none), one per line.
    public static func signedText(method: String, path: String, cid: String, gen: String, range: String) -> String {
        [method, path, cid, gen, range].joined(separator: "\n")
    }

    /// Request: the job's generation.
    public static let genHeader = "Relocator-Gen"
    /// Request (GET, optional): the version every range must come from. Answer: the file's version.
    public static let versionHeader = "Relocator-Version"
    /// Answer: the file's size.
    public static let sizeHeader = "Relocator-Size"
    /// Answer: the checksum of the bytes of the answer.
    public static let rangeChecksumHeader = "Relocator-Range-Checksum"
    /// Answer: the file's mode and access and modification times (`FileAttributes`), which the copy
    /// takes.
    public static let attributesHeader = "Relocator-Attributes"
    /// Answer: the code of a refusal, beside its JSON body (an answer to `HEAD` has no body).
    public static let refusalHeader = "Relocator-Refusal"
    /// Request (remove): the checksum of the copy, as its delivery recorded it.
    public static let checksumHeader = "Relocator-Checksum"
    /// Request (GET, HEAD): the bytes asked, `bytes=first-last` (`rangeValue`).
    public static let rangeHeader = "Range"
    /// Answer (GET with a range): the bytes it carries, `bytes first-last/size` (`contentRange`).
    public static let contentRangeHeader = "Content-Range"

    /// The `Range` of `length` bytes (at least 1) from `offset`.
    public static func rangeValue(offset: Int64, length: Int64) -> String { "bytes=\(offset)-\(offset + length - 1)" }
    /// The `Content-Range` of an answer of `length` bytes (at least 1) from `offset`, of a file of `size`.
    public static func contentRange(offset: Int64, length: Int64, size: Int64) -> String { "bytes \(offset)-\(offset + length - 1)/\(size)" }

    /// The most bytes one answer carries.
    public static let maximumRange = 64 << 20

    /// The machine-readable codes of the endpoint's refusals (`{"error": code, "message": …}`).
    public enum Refusal: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case noRoute = "no_route"
        case invalidCID = "invalid_cid"
        case invalidGen = "invalid_gen"
        case invalidRange = "invalid_range"
        case invalidChecksum = "invalid_checksum"
        case missingCredential = "missing_credential"
        case wrongCredential = "wrong_credential"
        /// The request's signature is not one under this worker's shared key.
        case wrongSignature = "wrong_signature"
        case unknownCID = "unknown_cid"
        case notServed = "not_served"
        case sourceMissing = "source_missing"
        case staleDelivery = "stale_delivery"
        case notProven = "not_proven"
        case contentLocked = "content_locked"
        case checksumMismatch = "checksum_mismatch"
        case sourceChanged = "source_changed"
        case versionChanged = "version_changed"
        case rangeNotSatisfiable = "range_not_satisfiable"
        case unsafePath = "unsafe_path"
        case notRegularFile = "not_regular_file"
        case invalidFilename = "invalid_filename"
        case unavailable
        case internalError = "internal"

        /// The HTTP status of the refusal.
        public var status: Int {
            switch self {
            case .badRequest, .invalidCID, .invalidGen, .invalidRange, .invalidChecksum: return 400
            case .missingCredential: return 401
            case .wrongCredential, .wrongSignature: return 403
            case .noRoute, .unknownCID, .notServed, .sourceMissing: return 404
            case .staleDelivery, .notProven, .contentLocked, .checksumMismatch, .sourceChanged: return 409
            case .versionChanged: return 412
            case .rangeNotSatisfiable: return 416
            case .unsafePath, .notRegularFile, .invalidFilename: return 422
            case .unavailable: return 503
            case .internalError: return 500
            }
        }
    }

    /// A `Range: bytes=a-b` (or `bytes=a-`) of a file of `size` bytes: its first offset and length,
    /// at most `maximumRange`. Nil for a range past the end (416); throws for one that does not
    /// parse, or that is longer than `maximumRange` (400). No value of the header traps.
    public static func range(_ header: String, size: Int64) throws(RangeInvalid) -> (offset: Int64, length: Int)? {
        guard header.hasPrefix("bytes=") else { throw RangeInvalid(description: "expected bytes=first-last (got '\(header.prefix(64))')") }
        let spec = header.dropFirst("bytes=".count)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        func number(_ text: Substring) -> Int64? {
            guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int64(text)
        }
        guard parts.count == 2, let first = number(parts[0]) else {
            throw RangeInvalid(description: "expected bytes=first-last with one range of decimal offsets (got '\(header.prefix(64))')")
        }
        var last = size - 1
        if !parts[1].isEmpty {
            guard let given = number(parts[1]), given >= first else {
                throw RangeInvalid(description: "the last offset must be a decimal offset not below the first (got '\(header.prefix(64))')")
            }
            last = min(given, size - 1)
        }
        guard first < size else { return nil }
        let length = last - first + 1
        guard length <= Int64(maximumRange) else {
            throw RangeInvalid(description: "at most \(maximumRange) bytes per request (asked for \(length))")
        }
        return (first, Int(length))
    }

    public struct RangeInvalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let description: String
    }
}

/// The mode and times of a served file, as `Relocator-Attributes` carries them:
/// `mode=<octal>;atime=<s>.<ns>;mtime=<s>.<ns>`. No value of the header traps.
public struct FileAttributes: Equatable, Sendable {
    /// The permission bits (at most 0o7777).
    public var mode: UInt32
    public var accessed: (seconds: Int64, nanoseconds: Int64)
    public var modified: (seconds: Int64, nanoseconds: Int64)

    public init(mode: UInt32, accessed: (Int64, Int64), modified: (Int64, Int64)) {
        self.mode = mode & 0o7777
        self.accessed = accessed
        self.modified = modified
    }

    public static func == (a: FileAttributes, b: FileAttributes) -> Bool {
        a.mode == b.mode && a.accessed == b.accessed && a.modified == b.modified
    }

    public var header: String {
        "mode=\(String(mode, radix: 8));atime=\(accessed.seconds).\(accessed.nanoseconds);mtime=\(modified.seconds).\(modified.nanoseconds)"
    }

    /// Nil for a header that is not one.
    public init?(parsing text: String) {
        guard text.utf8.count <= 200 else { return nil }
        var fields: [Substring: Substring] = [:]
        for item in text.split(separator: ";") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            fields[pair[0]] = pair[1]
        }
        func time(_ text: Substring?) -> (Int64, Int64)? {
            guard let parts = text?.split(separator: ".", omittingEmptySubsequences: false), parts.count == 2,
                  parts.allSatisfy({ !$0.isEmpty && $0.count <= 18 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
                  let seconds = Int64(parts[0]), let nanoseconds = Int64(parts[1]), nanoseconds < 1_000_000_000 else { return nil }
            return (seconds, nanoseconds)
        }
        guard let modeText = fields["mode"], !modeText.isEmpty, modeText.count <= 5, let mode = UInt32(modeText, radix: 8), mode <= 0o7777,
              let accessed = time(fields["atime"]), let modified = time(fields["mtime"]) else { return nil }
        self.init(mode: mode, accessed: accessed, modified: modified)
    }
}
