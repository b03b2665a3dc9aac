import Foundation

/// The keys of a JSON body's objects, checked before it is decoded: a decoder keeps one of two
/// values given for one key (which one is its own choice), so a body naming a key twice — also
/// spelt with escapes, `"count"` and `"\u0063ount"` — is refused, as a form naming a field twice is.
enum JSONKeys {
    /// The first key an object of `bytes` names twice, decoded; nil when none does (or when the
    /// bytes are not JSON that far: the decoder then says what is wrong).
    static func repeated<Bytes: Collection<UInt8>>(in bytes: Bytes) -> String? {
        // One entry per object or array open: the keys of an object so far (compared as Unicode
        // scalars, as JSON compares them: two spellings of `é` are two keys), nil for an array.
        var open: [Set<[Unicode.Scalar]>?] = []
        var expectingKey = false
        var tokenStart: Bytes.Index? = nil
        var escaped = false
        var hasEscape = false
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if let start = tokenStart {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                    hasEscape = true
                } else if byte == UInt8(ascii: "\"") {
                    tokenStart = nil
                    if expectingKey, var keys = open.last ?? nil {
                        expectingKey = false
                        // (A key whose escapes do not decode is left to the decoder, which refuses it.)
                        if let key = decodedKey(bytes[start...index], hasEscape: hasEscape) {
                            let scalars = Array(key.unicodeScalars)
                            if keys.contains(scalars) { return key }
                            keys.insert(scalars)
                            open[open.count - 1] = keys
                        }
                    }
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""):
                    tokenStart = index
                    hasEscape = false
                case UInt8(ascii: "{"):
                    open.append([])
                    expectingKey = true
                case UInt8(ascii: "["):
                    open.append(nil)
                    expectingKey = false
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    guard !open.isEmpty else { return nil }
                    open.removeLast()
                    expectingKey = false
                case UInt8(ascii: ","):
                    expectingKey = (open.last ?? nil) != nil
                default:
                    break
                }
            }
            index = bytes.index(after: index)
        }
        return nil
    }

    /// A key's text from its quoted token (`"count"`), its escapes decoded; nil when they do not decode.
    private static func decodedKey(_ token: some Collection<UInt8>, hasEscape: Bool) -> String? {
        guard hasEscape else { return String(decoding: token.dropFirst().dropLast(), as: UTF8.self) }
        let array = Data("[".utf8) + Data(token) + Data("]".utf8)
        return (try? JSONSerialization.jsonObject(with: array) as? [String])?.first
    }
}
