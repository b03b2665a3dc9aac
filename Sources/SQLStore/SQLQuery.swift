/// A statement whose interpolated values become bound parameters:
/// `"SELECT * FROM contents WHERE cid = \(cid)"` sends `cid` as `$1` or `?`, never as text in the SQL.
/// Raw SQL must be spelled out: `\(unsafeSQL: dialect.currentTime)`, `\(identifier: "level")`.
public struct SQLQuery: Sendable, ExpressibleByStringInterpolation {
    enum Part: Sendable {
        case sql(String)
        case bind(SQLValue)
        case identifier(String)
        case currentTime
    }

    var parts: [Part]

    public init(stringLiteral value: String) {
        parts = [.sql(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        parts = stringInterpolation.parts
    }

    public init(unsafeSQL sql: String, binds: [SQLValue] = []) {
        // `?` in the text marks the parameters, in order.
        var parts: [Part] = []
        var rest = Substring(sql)
        var values = binds[...]
        while let mark = rest.firstIndex(of: "?"), let value = values.popFirst() {
            parts.append(.sql(String(rest[..<mark])))
            parts.append(.bind(value))
            rest = rest[rest.index(after: mark)...]
        }
        parts.append(.sql(String(rest)))
        self.parts = parts
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) {
            parts.append(.sql(literal))
        }

        /// A bound parameter.
        public mutating func appendInterpolation(_ value: some SQLValueConvertible) {
            parts.append(.bind(value.sqlValue))
        }

        /// A bound parameter that may be NULL.
        public mutating func appendInterpolation<T: SQLValueConvertible>(_ value: T?) {
            parts.append(.bind(value?.sqlValue ?? .null))
        }

        /// Another query's text and parameters, in place (a `WHERE` clause built apart).
        public mutating func appendInterpolation(_ fragment: SQLQuery) {
            parts.append(contentsOf: fragment.parts)
        }

        /// SQL text taken as it is: only for text the program wrote, never for input.
        public mutating func appendInterpolation(unsafeSQL sql: String) {
            parts.append(.sql(sql))
        }

        /// A table or column name, quoted for the dialect.
        public mutating func appendInterpolation(identifier: String) {
            parts.append(.identifier(identifier))
        }

        /// The dialect's current-time expression.
        public mutating func appendInterpolation(now: Void) {
            parts.append(.currentTime)
        }
    }

    /// The SQL text with the dialect's placeholders, and the values to bind to them.
    public func render(for dialect: SQLDialect) -> (sql: String, binds: [SQLValue]) {
        var sql = ""
        var binds: [SQLValue] = []
        for part in parts {
            switch part {
            case .sql(let text): sql += text
            case .bind(let value):
                binds.append(value)
                sql += dialect.placeholder(binds.count)
            case .identifier(let name): sql += dialect.quote(name)
            case .currentTime: sql += dialect.currentTime
            }
        }
        return (sql, binds)
    }
}
