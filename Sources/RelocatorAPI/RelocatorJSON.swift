import Foundation
import Hummingbird
#if canImport(Glibc)
import Glibc
#endif

/// The one JSON encoding of the API and of the command line's `--json`: snake_case keys (spelled
/// by each type's `CodingKeys`), keys sorted, `/` not escaped, times as RFC 3339 UTC strings
/// (`Timestamp`). Epoch milliseconds exist only inside Redis.
public enum RelocatorJSON {
    /// A new encoder with the project's settings (an encoder is not shared across threads).
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The value as JSON bytes.
    public static func data(_ value: some Encodable, pretty: Bool = false) throws -> Data {
        try encoder(pretty: pretty).encode(value)
    }

    /// The value as JSON text (what `--json` prints).
    public static func string(_ value: some Encodable, pretty: Bool = false) throws -> String {
        String(decoding: try data(value, pretty: pretty), as: UTF8.self)
    }
}

/// The `ResponseEncoder` of the API's request context: `RelocatorJSON`, `application/json`.
public struct RelocatorResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let data = try RelocatorJSON.encoder().encode(value)
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

/// A moment, kept as milliseconds since 1970 (as Redis holds it) and written as RFC 3339 UTC with
/// milliseconds: `2026-11-27T21:47:15.123Z`.
public struct Timestamp: Encodable, Equatable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// Nil for nil or a non-positive value (a field that was never set).
    public init?(milliseconds: Int64?) {
        guard let milliseconds, milliseconds > 0 else { return nil }
        self.milliseconds = milliseconds
    }

    public var description: String {
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let millis = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(millis, 3))Z"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
