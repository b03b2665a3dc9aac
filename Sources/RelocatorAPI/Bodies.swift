import Foundation
import Hummingbird

/// JSON in and out, through Foundation's JSONSerialization (the original's JSON has `null`s and
/// string values that a Codable struct would not keep in this shape).
enum JSONBody {
    static func response(_ status: Int, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]))
            ?? Data("{\"error\":\"internal\",\"message\":\"the answer could not be encoded\"}".utf8)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
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
