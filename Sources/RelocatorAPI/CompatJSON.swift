import Hummingbird

/// JSON written byte by byte where the bytes matter: the original `/post_sentence` answer as
/// Python's `json.dumps` writes a dict (keys in insertion order, `", "` and `": "` between items,
/// every character outside printable ASCII as a lowercase `\uXXXX` escape, surrogate pairs above
/// U+FFFF), and the small error bodies in the compact form `RelocatorJSON` writes.
enum CompatJSON {
    enum Value: Equatable, Sendable {
        case string(String)
        case null
    }

    /// `{"k": v, …}` (Python) or `{"k":v,…}` (compact), keys in the order given.
    static func writeObject(_ pairs: [(String, Value)], compact: Bool, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "{"))
        for (index, (key, value)) in pairs.enumerated() {
            if index > 0 { buffer.writeStaticString(compact ? "," : ", ") }
            writeString(key, asciiOnly: !compact, to: &buffer)
            buffer.writeStaticString(compact ? ":" : ": ")
            switch value {
            case .string(let text): writeString(text, asciiOnly: !compact, to: &buffer)
            case .null: buffer.writeStaticString("null")
            }
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// The bytes of `json.dumps` for a dict of these pairs.
    static func python(_ pairs: [(String, Value)]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 192)
        writeObject(pairs, compact: false, to: &buffer)
        return buffer
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// A JSON string. `asciiOnly`: Python's `ensure_ascii` (everything outside `0x20…0x7e` as
    /// `\uXXXX`, except the short escapes `\" \\ \n \r \t \b \f`); otherwise UTF-8 as is, with
    /// only control characters escaped.
    static func writeString(_ text: String, asciiOnly: Bool, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        // Most strings need no escape at all: written as they are.
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.allSatisfy { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && (!asciiOnly || $0 < 0x7F) }
        } ?? text.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && (!asciiOnly || $0 < 0x7F) }
        if plain {
            buffer.writeString(text)
            buffer.writeInteger(UInt8(ascii: "\""))
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: buffer.writeStaticString("\\\"")
            case 0x5C: buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0x08: buffer.writeStaticString("\\b")
            case 0x0C: buffer.writeStaticString("\\f")
            case 0x20..<0x7F: buffer.writeInteger(UInt8(scalar.value))
            case 0x7F... where !asciiOnly: buffer.writeString(String(scalar))
            case 0x10000...:
                let value = scalar.value - 0x10000
                writeEscape(0xD800 + (value >> 10), to: &buffer)
                writeEscape(0xDC00 + (value & 0x3FF), to: &buffer)
            default: writeEscape(scalar.value, to: &buffer)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static func writeEscape(_ unit: UInt32, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("\\u")
        for shift in stride(from: 12, through: 0, by: -4) { buffer.writeInteger(hex[Int((unit >> UInt32(shift)) & 0xF)]) }
    }
}
