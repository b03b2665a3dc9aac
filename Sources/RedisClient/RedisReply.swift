/// One RESP2 reply.
public enum RedisReply: Equatable, Sendable {
    /// `+OK` and other simple strings.
    case status(String)
    /// `-ERR …`: an error the server answered. `send` throws it; a pipeline returns it in place.
    case error(String)
    case integer(Int64)
    /// A bulk string, binary-safe.
    case bulk([UInt8])
    /// A nil bulk string or nil array.
    case null
    case array([RedisReply])

    /// The reply as text: bulk strings (UTF-8) and statuses; nil otherwise.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The reply as an integer: integer replies and bulk strings holding a decimal number.
    public var int: Int? {
        switch self {
        case .integer(let value): return Int(value)
        case .bulk: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// A flat `[field, value, field, value…]` array (HGETALL) as a dictionary.
    public var hash: [String: String]? {
        guard let items = array, items.count % 2 == 0 else { return nil }
        var result: [String: String] = [:]
        var index = 0
        while index < items.count {
            if let key = items[index].string, let value = items[index + 1].string { result[key] = value }
            index += 2
        }
        return result
    }
}
