import Foundation
import Hummingbird

/// JSON out through a small writer of its own (strings, whole numbers, booleans, null, arrays and
/// objects with sorted keys — all the answers hold), which is several times cheaper than
/// JSONSerialization on Linux; JSON in through JSONDecoder.
enum JSONBody {
    static func response(_ status: Int, _ object: Any) -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        write(object, to: &buffer)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    static func write(_ value: Any, to buffer: inout ByteBuffer) {
        switch value {
        case let text as String: writeString(text, to: &buffer)
        case let number as Int: buffer.writeString(String(number))
        case let number as Int64: buffer.writeString(String(number))
        case let flag as Bool: buffer.writeString(flag ? "true" : "false")
        case let list as [Any]:
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, item) in list.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                write(item, to: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        case let object as [String: Any]:
            buffer.writeInteger(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                writeString(key, to: &buffer)
                buffer.writeInteger(UInt8(ascii: ":"))
                write(object[key]!, to: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        default: buffer.writeString("null")
        }
    }

    static func writeString(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0x0f)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Decodes a JSON body strictly (a string or a fraction where a whole number belongs is refused).
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, maxBytes: Int, expected: String) async throws -> T {
        let buffer = try await request.body.collect(upTo: maxBytes)
        guard buffer.readableBytes > 0 else { throw ServiceError.badRequest("the request needs a JSON body: \(expected)") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw ServiceError.badRequest("the body must be \(expected)")
        }
    }
}

/// An `application/x-www-form-urlencoded` body, as the original Flask routes read with `request.form`.
struct FormBody {
    var fields: [String: String]

    static func parse(_ request: Request, maxBytes: Int) async throws -> FormBody {
        if let type = request.headers[.contentType]?.lowercased(), !type.hasPrefix("application/x-www-form-urlencoded") {
            throw ServiceError(status: 415, code: "unsupported_media_type",
                               message: "send the fields as application/x-www-form-urlencoded, not \(type.prefix(80))")
        }
        let buffer = try await request.body.collect(upTo: maxBytes)
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(parts[0]) else { throw ServiceError.badRequest("the form is not valid URL encoding") }
            guard let value = parts.count > 1 ? decode(parts[1]) : "" else {
                throw ServiceError.badRequest("form field '\(key.prefix(64))' is not valid URL encoding")
            }
            if fields[key] == nil { fields[key] = value }
        }
        return FormBody(fields: fields)
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    func int(_ name: String, minimum: Int64) throws -> Int64 {
        guard let text = fields[name], !text.isEmpty else { throw ServiceError.badRequest("form field '\(name)' is missing") }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = Int64(trimmed) else {
            throw ServiceError.badRequest("form field '\(name)' must be a whole number, got '\(text.prefix(64))'")
        }
        guard value >= minimum else {
            throw ServiceError.badRequest("form field '\(name)' must be at least \(minimum), got \(value)")
        }
        return value
    }
}
