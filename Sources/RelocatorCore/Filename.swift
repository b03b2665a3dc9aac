/// A content's filename, checked before it is joined to a level directory: relative, no `..` or `.`
/// component, no NUL, no empty component, not too long, not inside the directory Relocator reserves
/// in each level (`.relocator/`). Subdirectories (`a/b.mp4`) are allowed.
public struct Filename: Equatable, Sendable, CustomStringConvertible {
    public let value: String

    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let reason: String
        public var description: String { reason }
    }

    public init(_ value: String) throws {
        guard !value.isEmpty else { throw Invalid(reason: "the filename is empty") }
        guard !value.utf8.contains(0) else { throw Invalid(reason: "the filename contains a NUL byte") }
        guard !value.hasPrefix("/") else { throw Invalid(reason: "the filename is an absolute path") }
        guard value.utf8.count <= 1024 else { throw Invalid(reason: "the filename is longer than 1024 bytes") }
        let components = value.split(separator: "/", omittingEmptySubsequences: false)
        for component in components {
            if component == ".." { throw Invalid(reason: "the filename contains '..'") }
            if component == "." || component.isEmpty { throw Invalid(reason: "the filename has an empty or '.' component") }
            if component.utf8.count > 255 { throw Invalid(reason: "a filename component is longer than 255 bytes") }
        }
        if components.first == Substring(ReservedDirectory.name) && !Mutant.reservedNameAllowed.isActive {
            throw Invalid(reason: "the filename is inside \(ReservedDirectory.name)/, the directory Relocator reserves in each level")
        }
        self.value = value
    }

    public var description: String { value }

    /// The last component.
    public var baseName: String { String(value.split(separator: "/").last!) }
}
