/// A value bound to a statement or read from a row.
public enum SQLValue: Equatable, Sendable, CustomStringConvertible {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .text(let v): return v
        }
    }
}

/// A Swift value that can be bound as a statement parameter.
public protocol SQLValueConvertible: Sendable {
    var sqlValue: SQLValue { get }
}

/// A Swift value that can be read from a column.
public protocol SQLValueDecodable {
    init?(sqlValue: SQLValue)
}

extension SQLValue: SQLValueConvertible {
    public var sqlValue: SQLValue { self }
}

extension Int: SQLValueConvertible, SQLValueDecodable {
    public var sqlValue: SQLValue { .int(Int64(self)) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .int(let v): self.init(exactly: v)
        case .text(let t): self.init(t)
        default: return nil
        }
    }
}

extension Int64: SQLValueConvertible, SQLValueDecodable {
    public var sqlValue: SQLValue { .int(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .int(let v): self = v
        case .text(let t): self.init(t)
        default: return nil
        }
    }
}

extension Double: SQLValueConvertible, SQLValueDecodable {
    public var sqlValue: SQLValue { .double(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .double(let v): self = v
        case .int(let v): self = Double(v)
        case .text(let t): self.init(t)
        default: return nil
        }
    }
}

extension String: SQLValueConvertible, SQLValueDecodable {
    public var sqlValue: SQLValue { .text(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .text(let t): self = t
        case .int(let v): self = String(v)
        case .double(let v): self = String(v)
        case .null: return nil
        }
    }
}

extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}
