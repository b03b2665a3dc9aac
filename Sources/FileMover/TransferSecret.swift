import Crypto
import RelocatorCore

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

/// The key the workers of every host share (`--transfer-secret-file`): each transfer request
/// carries the HMAC-SHA256 of its method, path, content id, generation and range under it
/// (`Relocator-Signature`), so that a caller without the key is refused even with a delivery's
/// credentials. Never logged or printed.
public struct TransferSigningKey: Sendable, CustomStringConvertible {
    let key: [UInt8]

    /// The fewest bytes a key file holds (trailing whitespace aside).
    public static let minimumLength = 16

    public init(bytes: [UInt8]) throws(TransferKeyError) {
        var bytes = bytes
        while let last = bytes.last, last == 10 || last == 13 || last == 32 || last == 9 { bytes.removeLast() }
        guard bytes.count >= Self.minimumLength else {
            throw TransferKeyError(description: "holds \(bytes.count) bytes: a shared secret has at least \(Self.minimumLength)")
        }
        key = bytes
    }

    /// The signature of one request, as hex.
    public func sign(method: String, path: String, cid: String, gen: String, range: String) -> String {
        let text = TransferProtocol.signedText(method: method, path: path, cid: cid, gen: gen, range: range)
        return RunningHash.hex(bytes: Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))))
    }

    /// True when `presented` is the request's signature (compared in constant time).
    public func verifies(_ presented: String, method: String, path: String, cid: String, gen: String, range: String) -> Bool {
        ConstantTime.equal(Array(presented.utf8), Array(sign(method: method, path: path, cid: cid, gen: gen, range: range).utf8))
    }

    public var description: String { "TransferSigningKey(redacted)" }
}

/// Why a key file is not one.
public struct TransferKeyError: Error, CustomStringConvertible, Sendable {
    public let description: String
}
