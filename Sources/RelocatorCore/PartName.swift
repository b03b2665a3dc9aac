/// The name of a move's temporary file: `.<base>.relocator-<cid>-<gen>.part`, beside the final
/// name in the target level's directory. The one place that spells it: the mover creates it, the
/// worker records it in the job, reconcile finds stale ones by parsing names back.
public struct PartName: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The final file's last component (shortened when the whole name would not fit in 255 bytes).
    public let baseName: String
    public let cid: Int64
    public let gen: Int64

    static let marker = ".relocator-"
    static let suffix = ".part"
    /// Longest file name (one component) Linux filesystems take.
    static let maximumLength = 255

    public init(baseName: String, cid: Int64, gen: Int64) {
        let overhead = 1 + Self.marker.utf8.count + "\(cid)-\(gen)".utf8.count + Self.suffix.utf8.count
        self.baseName = Self.prefix(of: baseName, maxBytes: max(1, Self.maximumLength - overhead))
        self.cid = cid
        self.gen = gen
    }

    /// The temporary file of the move of `filename` (its last component) for job `cid`, `gen`.
    public init(for filename: Filename, cid: Int64, gen: Int64) {
        self.init(baseName: filename.baseName, cid: cid, gen: gen)
    }

    /// Parses a file name (one component, no `/`) back; nil for any name this type did not make.
    public init?(parsing name: String) {
        guard name.hasPrefix("."), name.hasSuffix(Self.suffix), !name.contains("/"),
              let marker = Self.lastRange(of: Self.marker, in: name),
              marker.lowerBound > name.index(after: name.startIndex) else { return nil }
        let base = name[name.index(after: name.startIndex)..<marker.lowerBound]
        let tag = name[marker.upperBound..<name.index(name.endIndex, offsetBy: -Self.suffix.count)]
        let numbers = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard numbers.count == 2,
              let cid = Self.decimal(numbers[0]), let gen = Self.decimal(numbers[1]) else { return nil }
        self.baseName = String(base)
        self.cid = cid
        self.gen = gen
    }

    /// `.<base>.relocator-<cid>-<gen>.part`
    public var fileName: String { ".\(baseName)\(Self.marker)\(cid)-\(gen)\(Self.suffix)" }

    public var description: String { fileName }

    /// The temporary file's path relative to a level directory: `filename`'s directories, then
    /// `fileName`.
    public static func relativePath(for filename: Filename, cid: Int64, gen: Int64) -> String {
        let name = PartName(for: filename, cid: cid, gen: gen).fileName
        guard let slash = filename.value.lastIndex(of: "/") else { return name }
        return String(filename.value[...slash]) + name
    }

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

    /// Digits only (no sign, no spaces), within Int64.
    private static func decimal(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    /// The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a character.
    private static func prefix(of text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size > maxBytes { break }
            result.append(character)
            used += size
        }
        return result
    }
}
