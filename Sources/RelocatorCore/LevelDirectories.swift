/// The directory of each level, from `RELOCATOR_LEVELS` (`gold=/data/ssd,silver=/data/hdd`).
public struct LevelDirectories: Equatable, Sendable {
    /// Level names in the order they were given.
    public private(set) var names: [String] = []
    private var paths: [String: String] = [:]

    public init(_ pairs: [(String, String)]) {
        for (name, path) in pairs where paths[name] == nil {
            names.append(name)
            paths[name] = path
        }
    }

    public init(parsing text: String, setting: String = "RELOCATOR_LEVELS") throws {
        let expected = "expected level=directory pairs separated by commas, e.g. gold=/data/ssd,silver=/data/hdd"
        var pairs: [(String, String)] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(setting: setting, expected: "\(expected) (got '\(item)')")
            }
            guard Self.isValidName(parts[0]) else {
                throw ConfigurationError(setting: setting, expected: "level names use letters, digits, '_' and '-' (got '\(parts[0])')")
            }
            guard parts[1].utf8.first == UInt8(ascii: "/") else {
                throw ConfigurationError(setting: setting, expected: "an absolute directory for level '\(parts[0])' (got '\(parts[1])')")
            }
            guard !pairs.contains(where: { $0.0 == parts[0] }) else {
                throw ConfigurationError(setting: setting, expected: "each level once (level '\(parts[0])' is repeated)")
            }
            pairs.append((parts[0], parts[1]))
        }
        guard !pairs.isEmpty else { throw ConfigurationError(setting: setting, expected: expected) }
        self.init(pairs)
    }

    public func directory(of level: String) -> String? { paths[level] }

    /// The levels `keep` keeps, in the same order.
    public func filter(_ keep: (String) -> Bool) -> LevelDirectories {
        LevelDirectories(names.filter(keep).map { ($0, paths[$0]!) })
    }

    /// A level name must be safe inside a Redis key and a path: letters, digits, `_` and `-`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
