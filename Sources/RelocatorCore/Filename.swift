/// A content's filename, checked before it is joined to a level directory: relative, no `..` or `.`
/// component, no NUL, no empty component, not too long, not inside the directory Relocator reserves
/// in each level (`.relocator/`, in any case). Subdirectories (`a/b.mp4`) are allowed.
public struct Filename: Equatable, Sendable, CustomStringConvertible {
    public let value: String

    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let reason: String
        public var description: String { reason }
    }

    public init(_ value: String) throws {
        guard !value.isEmpty else { throw Invalid(reason: "the filename is empty") }
        guard !value.utf8.contains(0) else { throw Invalid(reason: "the filename contains a NUL byte") }
        guard value.utf8.first != UInt8(ascii: "/") else { throw Invalid(reason: "the filename is an absolute path") }
        guard value.utf8.count <= 1024 else { throw Invalid(reason: "the filename is longer than 1024 bytes") }
        // Every test on the bytes, as the kernel reads them (a component compared as characters
        // could hide a `/`, or be `..` followed by a combining mark that is its own character).
        let components = Self.components(of: value, omittingEmpty: false)
        for component in components {
            if component.utf8.elementsEqual("..".utf8) { throw Invalid(reason: "the filename contains '..'") }
            if component.utf8.elementsEqual(".".utf8) || component.isEmpty { throw Invalid(reason: "the filename has an empty or '.' component") }
            if component.utf8.count > 255 { throw Invalid(reason: "a filename component is longer than 255 bytes") }
        }
        // In any case of its letters, and with trailing dots or spaces: on a filesystem that
        // ignores case and drops them (vfat, exFAT, some network shares), `.Relocator./` is the
        // reserved directory.
        let asciiLowercase = { (byte: UInt8) in (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte }
        var first = Substring(components.first ?? "").utf8
        while let last = first.last, last == UInt8(ascii: ".") || last == UInt8(ascii: " ") { first = first.dropLast() }
        if first.lazy.map(asciiLowercase).elementsEqual(ReservedDirectory.name.utf8) && !Mutant.reservedNameAllowed.isActive {
            throw Invalid(reason: "the filename is inside \(ReservedDirectory.name)/, the directory Relocator reserves in each level")
        }
        self.value = value
    }

    public var description: String { value }

    /// Two filenames are equal when their bytes are (`FilenameKey`), not when their characters are.
    public static func == (a: Filename, b: Filename) -> Bool {
        FilenameKey.same(a.value, b.value)
    }

    /// The last component.
    public var baseName: String { String(Self.components(of: value).last!) }

    /// The components of a relative path, split at every `/` byte as the kernel splits it.
    /// (`split(separator: "/")` splits at characters: a `/` followed by a combining mark, a
    /// zero-width joiner or a variation selector, or after a prepend mark, is one character with
    /// it — no split there, and a `/` left inside a component handed to an `*at` call.)
    public static func components(of path: String, omittingEmpty: Bool = true) -> [Substring] {
        path.unicodeScalars.split(separator: "/", omittingEmptySubsequences: omittingEmpty).map { Substring($0) }
    }
}
