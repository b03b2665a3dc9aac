/// What differs between the SQL dialects Relocator speaks.
public enum SQLDialect: String, Sendable, CaseIterable {
    case postgres
    case mysql
    case sqlite

    /// The placeholder of the n-th parameter (1-based).
    public func placeholder(_ index: Int) -> String {
        self == .postgres ? "$\(index)" : "?"
    }

    /// `count` parameters for an `IN (…)` list: `?, ?, ?` (the query layer numbers them).
    public static func marks(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    /// ` FOR UPDATE` where the dialect locks rows that way (SQLite's `BEGIN IMMEDIATE` holds the
    /// whole database already).
    public var forUpdate: String { self == .sqlite ? "" : " FOR UPDATE" }

    /// An identifier quoted for this dialect.
    public func quote(_ identifier: String) -> String {
        switch self {
        case .mysql: return "`" + identifier.replacingOccurrences(of: "`", with: "``") + "`"
        case .postgres, .sqlite: return "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
    }

    /// The expression for the current time, as stored in timestamp columns.
    public var currentTime: String {
        switch self {
        case .postgres: return "now()"
        case .mysql: return "CURRENT_TIMESTAMP(6)"
        case .sqlite: return "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        }
    }

    /// The expression for the time `seconds` ago, comparable with timestamp columns as
    /// `currentTime` writes them.
    public func timeAgo(seconds: Int) -> String {
        let seconds = max(0, seconds)
        switch self {
        case .postgres: return "now() - make_interval(secs => \(seconds))"
        case .mysql: return "CURRENT_TIMESTAMP(6) - INTERVAL \(seconds) SECOND"
        case .sqlite: return "strftime('%Y-%m-%d %H:%M:%f', 'now', '-\(seconds) seconds')"
        }
    }

    /// Column types, by what they hold.
    public enum ColumnType: Sendable {
        case bigint, integer, text, shortText, timestamp
    }

    public func typeName(_ type: ColumnType) -> String {
        switch (self, type) {
        case (.postgres, .bigint), (.mysql, .bigint): return "BIGINT"
        case (.sqlite, .bigint), (.sqlite, .integer): return "INTEGER"
        case (_, .integer): return "INTEGER"
        case (.mysql, .text): return "TEXT"
        case (_, .text): return "TEXT"
        case (.mysql, .shortText): return "VARCHAR(255)"
        case (_, .shortText): return "TEXT"
        case (.postgres, .timestamp): return "TIMESTAMPTZ"
        case (.mysql, .timestamp): return "DATETIME(6)"
        case (.sqlite, .timestamp): return "TEXT"
        }
    }

    /// The tail of an INSERT that updates `columns` from the new row when `conflict` already exists.
    public func upsertClause(conflict: [String], update columns: [String]) -> String {
        switch self {
        case .mysql:
            let sets = columns.map { "\(quote($0)) = VALUES(\(quote($0)))" }.joined(separator: ", ")
            return "ON DUPLICATE KEY UPDATE \(sets)"
        case .postgres, .sqlite:
            let keys = conflict.map(quote).joined(separator: ", ")
            if columns.isEmpty { return "ON CONFLICT (\(keys)) DO NOTHING" }
            let sets = columns.map { "\(quote($0)) = excluded.\(quote($0))" }.joined(separator: ", ")
            return "ON CONFLICT (\(keys)) DO UPDATE SET \(sets)"
        }
    }

    /// `INSERT` that skips a row whose key already exists (keeps the old row).
    public func insertIgnoring(into table: String, columns: [String], conflict: [String]) -> (head: String, tail: String) {
        let cols = columns.map(quote).joined(separator: ", ")
        switch self {
        case .mysql: return ("INSERT IGNORE INTO \(quote(table)) (\(cols))", "")
        case .postgres, .sqlite:
            return ("INSERT INTO \(quote(table)) (\(cols))", "ON CONFLICT (\(conflict.map(quote).joined(separator: ", "))) DO NOTHING")
        }
    }
}
