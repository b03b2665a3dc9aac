import Foundation
import Hummingbird
import RelocatorCore

/// The fields of the original routes' `application/x-www-form-urlencoded` bodies, read with
/// Hummingbird's `URLEncodedFormDecoder` (as Flask's `request.form`). Every field is read as text
/// and turned into a number here, so that a bad value gets a message naming the field and the range.
struct SentenceForm: Decodable, Sendable {
    var cid: String?
    var count: String?

    /// Decodes the body; 415 for another content type, 413 over `maxBytes`, 400 for a body that is
    /// not valid URL encoding.
    static func decode(_ request: Request, maxBytes: Int) async throws -> SentenceForm {
        if let type = request.headers[.contentType], !FormRules.isURLEncoded(type) {
            throw APIError(.unsupportedMediaType, "send the fields as application/x-www-form-urlencoded, not \(type.prefix(80))")
        }
        let buffer = try await request.body.collect(upTo: maxBytes)
        if let form = buffer.withUnsafeReadableBytes({ plainDigits($0) }) { return form }
        do {
            return try URLEncodedFormDecoder().decode(SentenceForm.self, from: String(buffer: buffer))
        } catch let error as URLEncodedFormError {
            throw APIError.badRequest(FormRules.message(for: error))
        } catch {
            throw APIError.badRequest("the form is not valid URL encoding: send cid=N&count=N")
        }
    }
}

extension SentenceForm {
    /// The usual body, `cid=N&count=N` in either order with both values plain ASCII digits, read
    /// without building strings for the decoder (it cost about 56,000 instructions a request, a
    /// quarter of the route's own work, measured with callgrind). Nil for anything else (another
    /// field, an escape, `+`, an empty or repeated field): `URLEncodedFormDecoder` reads those and
    /// gives the same fields or the error.
    static func plainDigits(_ bytes: UnsafeRawBufferPointer) -> SentenceForm? {
        var cid: String?
        var count: String?
        var index = bytes.startIndex
        while index < bytes.endIndex {
            // A field name: up to '='.
            let nameStart = index
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: "=") { index += 1 }
            guard index < bytes.endIndex else { return nil }
            let name = bytes[nameStart..<index]
            index += 1
            // Its value: one or more digits up to '&' or the end.
            let valueStart = index
            while index < bytes.endIndex, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > valueStart else { return nil }
            if index < bytes.endIndex {
                guard bytes[index] == UInt8(ascii: "&"), index + 1 < bytes.endIndex else { return nil }
            }
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<index]), as: UTF8.self)
            if name.elementsEqual("cid".utf8) {
                guard cid == nil else { return nil }
                cid = value
            } else if name.elementsEqual("count".utf8) {
                guard count == nil else { return nil }
                count = value
            } else {
                return nil
            }
            index += index < bytes.endIndex ? 1 : 0
        }
        guard cid != nil, count != nil else { return nil }
        return SentenceForm(cid: cid, count: count)
    }
}

/// The pure rules of form input: which content types are forms, and what a field must hold.
enum FormRules {
    /// The type, in any case, with or without parameters (compared byte by byte, ASCII letters
    /// folded, without a lower-cased copy on every request).
    static func isURLEncoded(_ contentType: String) -> Bool {
        let expected = "application/x-www-form-urlencoded".utf8
        var given = contentType.utf8.makeIterator()
        for byte in expected {
            guard var next = given.next() else { return false }
            if next >= UInt8(ascii: "A") && next <= UInt8(ascii: "Z") { next += 0x20 }
            guard next == byte else { return false }
        }
        return true
    }

    /// `cid`: a whole number from 1 to Int64.max.
    static func cid(_ text: String?, field: String = "cid") throws -> Int64 {
        try wholeNumber(text, field: field, minimum: 1)
    }

    /// `count`: a whole number from 0 to 2^53 − 1 (`CountBound`).
    static func count(_ text: String?, field: String = "count") throws -> Int64 {
        try wholeNumber(text, field: field, minimum: 0, maximum: CountBound.max)
    }

    /// A whole number in `minimum...maximum`; the message names the field and the range
    /// (`count must be a whole number between 0 and 9007199254740991 (2^53 − 1, …), got '…'`).
    static func wholeNumber(_ text: String?, field: String, minimum: Int64, maximum: Int64 = Int64.max) throws -> Int64 {
        guard let text, !text.isEmpty else { throw APIError.badRequest("form field '\(field)' is missing") }
        // The usual form has no spaces: only then is Foundation's trimming paid for.
        if let value = Int64(text) ?? Int64(text.trimmingCharacters(in: .whitespaces)) {
            guard value >= minimum else { throw APIError.badRequest("form field '\(field)' must be at least \(minimum), got \(value)") }
            guard value <= maximum else { throw APIError.badRequest(rangeMessage(field, minimum: minimum, maximum: maximum, got: text)) }
            return value
        }
        throw APIError.badRequest(rangeMessage(field, minimum: minimum, maximum: maximum, got: text))
    }

    static func rangeMessage(_ field: String, minimum: Int64, maximum: Int64 = Int64.max, got text: String?,
                             source: String = "form field") -> String {
        CountBound.rangeMessage(field, minimum: minimum, maximum: maximum, got: text, source: source)
    }

    static func message(for error: URLEncodedFormError) -> String {
        switch error.code {
        case .duplicateKeys: return "the form has field '\(error.value.prefix(64))' more than once"
        case .failedToPercentDecode: return "the form is not valid URL encoding near '\(error.value.prefix(64))'"
        default: return "the form is not valid URL encoding: send cid=N&count=N"
        }
    }
}
