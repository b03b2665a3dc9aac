/// Something that can be one argument of a Redis command: sent as its bytes.
public protocol RedisArgumentConvertible: Sendable {
    var redisArgument: [UInt8] { get }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Int: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Int64: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Double: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: [UInt8] { self }
}

/// A command: its name and arguments.
public struct RedisCommand: Sendable {
    public var arguments: [[UInt8]]

    public init(_ arguments: [any RedisArgumentConvertible]) {
        self.arguments = arguments.map(\.redisArgument)
    }

    public init(_ arguments: any RedisArgumentConvertible...) {
        self.init(arguments)
    }

    /// A command of arguments already in bytes.
    public init(bytes arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    /// The command name, upper-cased, for error messages.
    public var name: String {
        arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
    }
}
