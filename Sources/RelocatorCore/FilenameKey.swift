/// A content's filename as its bytes, to compare names or key them in a dictionary as the kernel
/// and the `contents(filename)` index tell them apart. (Two `String`s are equal when they are
/// canonically equivalent: `café` with `é` (C3 A9) and with `e` and a combining accent (65 CC 81)
/// are one string to Swift but two names on disk and two rows of `contents`.)
public struct FilenameKey: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ filename: String) {
        bytes = Array(filename.utf8)
    }

    /// The filename.
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

extension FilenameKey {
    /// True when two filenames are the same bytes (`FilenameKey`'s equality, without the copies).
    public static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }
}
