import Crypto

/// The random secret of one delivery pulling a file from another host: 32 bytes from the system's
/// generator (`getrandom`), sent as 64 hex digits in `Relocator-Secret`. The job records only its
/// digest (`JobField.transferKey`), so the secret is in no hash, list, log or answer; the source's
/// endpoint hashes what a request presents and compares in constant time.
public struct TransferSecret: Sendable, CustomStringConvertible {
    /// The header's value.
    public let text: String

    /// A new secret.
    public static func random() -> TransferSecret {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            let word = generator.next()
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return TransferSecret(text: RunningHash.hex(bytes: bytes))
    }

    /// What the job records of it.
    public var digest: String { Self.digest(of: text) }

    /// The SHA-256 (hex) of a presented secret.
    public static func digest(of presented: String) -> String {
        RunningHash.hex(bytes: Array(SHA256.hash(data: Array(presented.utf8))))
    }

    /// Never the secret itself (a value printed by mistake reveals nothing).
    public var description: String { "TransferSecret(redacted)" }
}
