import Foundation
import Hummingbird
import RelocatorCore

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
        var buffer = ByteBufferAllocator().buffer(capacity: 24)
        write(to: &buffer)
        return String(buffer: buffer)
    }

    /// `2026-11-27T21:47:15.123Z` (the date from `TimeText.civil`), without building strings.
    public func write(to buffer: inout ByteBuffer) {
        func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
            let quotient = value / divisor
            return value % divisor < 0 ? quotient - 1 : quotient
        }
        let seconds = floorDivide(milliseconds, 1000)
        let days = floorDivide(seconds, 86400)
        let secondOfDay = seconds - days * 86400
        let (year, month, day) = TimeText.civil(days: days)
        Self.writePadded(year, 4, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        Self.writePadded(month, 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        Self.writePadded(day, 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        Self.writePadded(secondOfDay / 3600, 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        Self.writePadded(secondOfDay % 3600 / 60, 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        Self.writePadded(secondOfDay % 60, 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        // Wrapping: the remainder fits even for Int64.min, where `seconds * 1000` would not.
        Self.writePadded(milliseconds &- seconds &* 1000, 3, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }

    /// `value` in decimal, with leading zeros up to `width` digits.
    private static func writePadded(_ value: Int64, _ width: Int, to buffer: inout ByteBuffer) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
            = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        var rest = value.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[raw.count - 1 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            while count < width {
                raw[raw.count - 1 - count] = UInt8(ascii: "0")
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...]))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
