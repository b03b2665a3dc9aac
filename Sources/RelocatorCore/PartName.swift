/// The directory Relocator keeps in each level directory for itself, `.relocator/`: the content
/// lock file and the temporary files of copies in flight live there. No content may (a `Filename`
/// whose first component is `.relocator` is refused by the API, the CLI and import), so what is in
/// it is provably Relocator's, and nothing is ever deleted for what its name looks like.
public enum ReservedDirectory {
    /// The directory's name in a level directory.
    public static let name = ".relocator"
    /// The content lock file: whoever changes a content's names in this level holds an OFD lock on
    /// byte `cid` of it (`ContentLock`).
    public static let lockFile = "lock"
    /// Temporary files of copies in flight: `PartName`.
    public static let temporary = "tmp"
    /// Where `reconcile --fix` puts files found under an earlier version's temporary names
    /// (`LegacyPartName`) that no content and no job owns: moved aside, never deleted.
    public static let orphans = "orphans"

    /// `.relocator/tmp`, relative to a level directory.
    public static var temporaryPath: String { "\(name)/\(temporary)" }
}

/// The name of a move's temporary file, `<cid>-<gen>.part`, in the target level's
/// `.relocator/tmp/`. It is derived from the job: the exclusive create (`O_EXCL`) of this name is
/// what detects a concurrent delivery of the same job.
public struct PartName: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let cid: Int64
    public let gen: Int64

    static let suffix = ".part"

    public init(cid: Int64, gen: Int64) {
        self.cid = cid
        self.gen = gen
    }

    /// Parses a file name back (one component); nil for any name this type did not make.
    public init?(parsing name: String) {
        guard name.hasSuffix(Self.suffix) else { return nil }
        let numbers = name.dropLast(Self.suffix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard numbers.count == 2, let cid = decimal(numbers[0]), let gen = decimal(numbers[1]) else { return nil }
        self.init(cid: cid, gen: gen)
    }

    /// `<cid>-<gen>.part`
    public var fileName: String { "\(cid)-\(gen)\(Self.suffix)" }

    /// `.relocator/tmp/<cid>-<gen>.part`, relative to a level directory.
    public var relativePath: String { "\(ReservedDirectory.temporaryPath)/\(fileName)" }

    public var description: String { fileName }
}

/// The temporary file name earlier versions gave a copy beside its final name,
/// `.<base>.relocator-<cid>-<gen>.part`. Only `reconcile` still reads it: such a file is moved into
/// `.relocator/orphans/` when no content row names it and its job is gone — never deleted, since a
/// content may have a name that looks like this.
public struct LegacyPartName: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let baseName: String
    public let cid: Int64
    public let gen: Int64

    static let marker = ".relocator-"
    static let suffix = ".part"

    public init(baseName: String, cid: Int64, gen: Int64) {
        self.baseName = baseName
        self.cid = cid
        self.gen = gen
    }

    /// Parses a file name (one component, no `/`) back; nil for any other name.
    public init?(parsing name: String) {
        guard name.hasPrefix("."), name.hasSuffix(Self.suffix), !name.contains("/"),
              let marker = Self.lastRange(of: Self.marker, in: name),
              marker.lowerBound > name.index(after: name.startIndex) else { return nil }
        let base = name[name.index(after: name.startIndex)..<marker.lowerBound]
        let tag = name[marker.upperBound..<name.index(name.endIndex, offsetBy: -Self.suffix.count)]
        let numbers = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard numbers.count == 2, let cid = decimal(numbers[0]), let gen = decimal(numbers[1]) else { return nil }
        self.init(baseName: String(base), cid: cid, gen: gen)
    }

    /// True when a file found at `relativePath` under such a name may be the file of a content
    /// named `filename`: the same path, or the same file name in another directory — a directory
    /// on its way may have been renamed since (and may be renamed back), and the file is then the
    /// content's all the same. Such a file is never moved aside.
    public static func mayBe(contentNamed filename: String, at relativePath: String) -> Bool {
        filename == relativePath || fileName(of: filename) == fileName(of: relativePath)
    }

    /// The last component of a relative path.
    public static func fileName(of path: String) -> Substring {
        Filename.components(of: path, omittingEmpty: false).last ?? Substring(path)
    }

    /// `.<base>.relocator-<cid>-<gen>.part`
    public var fileName: String { ".\(baseName)\(Self.marker)\(cid)-\(gen)\(Self.suffix)" }

    public var description: String { fileName }

    /// Where `needle` last occurs in `text`.
    private static func lastRange(of needle: String, in text: String) -> Range<String.Index>? {
        var found: Range<String.Index>?
        var start = text.startIndex
        while let range = text[start...].firstRange(of: needle) {
            found = range
            start = text.index(after: range.lowerBound)
        }
        return found
    }
}

/// Digits only (no sign, no spaces), within Int64.
private func decimal(_ text: Substring) -> Int64? {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
    return Int64(text)
}
