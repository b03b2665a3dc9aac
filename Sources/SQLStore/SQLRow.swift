/// One row of a result, with its column names.
public struct SQLRow: Sendable, Equatable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of a column, `.null` when the row has no such column.
    public subscript(column: String) -> SQLValue {
        guard let index = columns.firstIndex(of: column) else { return .null }
        return values[index]
    }

    /// The value of a column as `T`; throws when the column is missing, NULL or of another type.
    public func decode<T: SQLValueDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = columns.firstIndex(of: column) else {
            throw SQLError(code: .decoding, message: "the result has no column '\(column)'")
        }
        guard let value = T(sqlValue: values[index]) else {
            throw SQLError(code: .decoding, message: "column '\(column)' holds \(values[index] == .null ? "NULL" : "a value") that is not a \(T.self)")
        }
        return value
    }

    /// The value of a column as `T`, or nil when it is NULL.
    public func decodeIfPresent<T: SQLValueDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        if self[column] == .null { return nil }
        return try decode(column, as: type)
    }
}
