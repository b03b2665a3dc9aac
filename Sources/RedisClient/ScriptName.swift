import Crypto

/// A script's name as Redis gives it (`EVALSHA <sha1 of the source>`), computed here so that the
/// name does not depend on which cluster node answered `SCRIPT LOAD`. SHA-1 names the script; it
/// secures nothing.
enum ScriptName {
    /// The SHA-1 of `bytes` as 40 lowercase hex digits.
    static func hex<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Insecure.SHA1.hash(data: Array(bytes)).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}

extension RedisScript {
    /// The SHA1 of the source, as Redis names the script; computed once and kept.
    var sha1: String {
        if let known = loadedSHA { return known }
        let computed = ScriptName.hex(source.utf8)
        loadedSHA = computed
        return computed
    }
}
