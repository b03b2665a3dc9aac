import CHiredis
import Foundation
import RelocatorCore

/// One blocking connection to Redis over hiredis.
///
/// Calls block the calling thread: use it from one thread at a time, never from an event loop
/// (`RedisPool` runs them on threads of its own). After an I/O error the hiredis context is dead:
/// it is dropped and the next call connects again. An idle connection that the server closed
/// (a restart, a timeout) is noticed before the next command is written, so that command goes to a
/// fresh connection instead of failing.
public final class RedisConnection: @unchecked Sendable {
    public let url: RedisURL
    /// How long to wait for the TCP connection.
    public let connectTimeout: Duration
    /// How long to wait for a reply; blocking commands add their own block time to it.
    public let commandTimeout: Duration

    private var context: UnsafeMutablePointer<redisContext>?

    public init(url: RedisURL, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5)) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    deinit { close() }

    public var isConnected: Bool { context != nil }

    /// Connects now (otherwise the first command connects), authenticates and selects the database.
    public func connect() throws {
        if context != nil { return }
        guard let ctx = redisConnectWithTimeout(url.host, Int32(url.port), Self.timeval(connectTimeout)) else {
            throw RedisError(code: .connection, address: url.address, message: "cannot allocate a connection")
        }
        if ctx.pointee.err != 0 {
            let message = Self.errorString(ctx)
            redisFree(ctx)
            throw RedisError(code: .connection, address: url.address, message: "cannot connect: \(message)")
        }
        redisSetTimeout(ctx, Self.timeval(commandTimeout))
        context = ctx
        do {
            if let password = url.password {
                let auth = url.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
                do {
                    _ = try roundTrip([auth]).first!.throwingServerError(address: url.address, command: "AUTH")
                } catch var error as RedisError where error.code == .server || error.code == .authentication {
                    error.code = .authentication
                    error.message = "authentication failed: \(error.message)"
                    throw error
                }
            }
            if url.database != 0 {
                _ = try roundTrip([RedisCommand("SELECT", url.database)]).first!
                    .throwingServerError(address: url.address, command: "SELECT")
            }
        } catch {
            close()
            throw error
        }
    }

    /// Closes the connection; the next command opens a new one.
    public func close() {
        if let ctx = context {
            redisFree(ctx)
            context = nil
        }
    }

    /// Sends one command and returns its reply; an error reply is thrown as `RedisError` (`.server`).
    @discardableResult
    public func send(_ command: RedisCommand) throws -> RedisReply {
        try pipeline([command])[0].throwingServerError(address: url.address, command: command.name)
    }

    @discardableResult
    public func send(_ arguments: any RedisArgumentConvertible...) throws -> RedisReply {
        try send(RedisCommand(arguments))
    }

    /// Sends a blocking command (BRPOPLPUSH, BLPOP…) that may wait up to `block` on the server:
    /// the socket timeout is stretched by that much for this one call.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, block: Duration) throws -> RedisReply {
        try connectIfNeeded(for: command.name)
        redisSetTimeout(context!, Self.timeval(commandTimeout + block))
        defer { if let ctx = context { redisSetTimeout(ctx, Self.timeval(commandTimeout)) } }
        return try roundTrip([command])[0].throwingServerError(address: url.address, command: command.name)
    }

    /// Writes all commands, then reads all replies, in order. Error replies are returned in place.
    public func pipeline(_ commands: [RedisCommand]) throws -> [RedisReply] {
        if commands.isEmpty { return [] }
        try connectIfNeeded(for: commands[0].name)
        return try roundTrip(commands)
    }

    /// Runs a Lua script by its SHA1, loading it first when the server does not hold it.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [any RedisArgumentConvertible] = [], arguments: [any RedisArgumentConvertible] = []) throws -> RedisReply {
        var sha = script.loadedSHA
        if sha == nil { sha = try load(script) }
        do {
            do {
                return try send(script.command(sha: sha!, keys: keys, arguments: arguments))
            } catch let error as RedisError where error.isNoScript {
                let reloaded = try load(script)
                return try send(script.command(sha: reloaded, keys: keys, arguments: arguments))
            }
        } catch var error as RedisError where error.code == .server {
            error.command = "EVALSHA \(script.name)"
            error.message = script.translate(error.message)
            throw error
        }
    }

    /// Runs a script many times in one pipeline (see `pipeline(calls:)`).
    public func pipelineScript(_ script: RedisScript,
                               calls: [(keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible])]) throws -> [RedisReply] {
        try pipeline(calls: calls.map { .script(script, keys: $0.keys, arguments: $0.arguments) })
    }

    /// Commands and script runs in one pipeline. Scripts the server answered NOSCRIPT for (a flush
    /// in between) are loaded and those calls sent again; every other call ran once. Error replies
    /// stay in place.
    public func pipeline(calls: [RedisCall]) throws -> [RedisReply] {
        if calls.isEmpty { return [] }
        func command(_ call: RedisCall) throws -> RedisCommand {
            switch call {
            case .command(let command): return command
            case .script(let script, let keys, let arguments):
                let sha = try script.loadedSHA ?? load(script)
                return script.command(sha: sha, keys: keys, arguments: arguments)
            }
        }
        var replies = try pipeline(calls.map(command))
        let missing = replies.indices.filter {
            if case .error(let message) = replies[$0] { return message.hasPrefix("NOSCRIPT") }
            return false
        }
        if !missing.isEmpty {
            for index in missing { if case .script(let script, _, _) = calls[index] { script.loadedSHA = nil } }
            let again = try pipeline(try missing.map { try command(calls[$0]) })
            for (index, reply) in zip(missing, again) { replies[index] = reply }
        }
        // Script errors name the script's file and line.
        for index in replies.indices {
            if case .error(let message) = replies[index], case .script(let script, _, _) = calls[index] {
                replies[index] = .error(script.translate(message))
            }
        }
        return replies
    }

    private func load(_ script: RedisScript) throws -> String {
        guard let sha = try send("SCRIPT", "LOAD", script.source).string else {
            throw RedisError(code: .protocolViolation, address: url.address, command: "SCRIPT", message: "SCRIPT LOAD did not answer a SHA1")
        }
        script.loadedSHA = sha
        return sha
    }

    // MARK: - hiredis

    private func connectIfNeeded(for command: String) throws {
        if let ctx = context, Self.peerClosed(ctx) { close() }
        do {
            try connect()
        } catch var error as RedisError where error.command == nil {
            error.command = command
            throw error
        }
    }

    /// An idle connection must have nothing to read: readable (EOF or stray bytes) means the server
    /// closed it or the stream is out of step, and it must not be used for the next command.
    private static func peerClosed(_ ctx: UnsafeMutablePointer<redisContext>) -> Bool {
        var fds = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&fds, 1, 0) != 0
    }

    private func roundTrip(_ commands: [RedisCommand]) throws -> [RedisReply] {
        guard let ctx = context else {
            throw RedisError(code: .connection, address: url.address, command: commands.first?.name, message: "not connected")
        }
        for command in commands {
            let status = Self.withArgv(command.arguments) { argc, argv, lengths in
                redisAppendCommandArgv(ctx, argc, argv, lengths)
            }
            if status != REDIS_OK { throw ioFailure(ctx, command: command.name) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { throw ioFailure(ctx, command: command.name) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Turns the dead context's error into a `RedisError` and drops the context.
    private func ioFailure(_ ctx: UnsafeMutablePointer<redisContext>, command: String) -> RedisError {
        let message = Self.errorString(ctx)
        let timedOut = ctx.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
        close()
        if timedOut {
            return RedisError(code: .timeout, address: url.address, command: command, message: "no reply in time; the connection was closed")
        }
        let text = message.isEmpty ? "connection lost" : message
        return RedisError(code: .connection, address: url.address, command: command, message: text)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: return .bulk(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(Int(r.elements))
            for index in 0..<Int(r.elements) {
                if let element = r.element[index] { items.append(convert(element)) } else { items.append(.null) }
            }
            return .array(items)
        default: return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private static func errorString(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Lays the arguments out in one buffer and passes hiredis pointers into it.
    private static func withArgv<R>(_ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + 1)
        var offsets: [Int] = []
        var lengths: [Int] = []
        for argument in arguments {
            offsets.append(buffer.count)
            lengths.append(argument.count)
            buffer.append(contentsOf: argument)
        }
        buffer.append(0)
        return buffer.withUnsafeBufferPointer { base in
            let start = UnsafeRawPointer(base.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { start + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(arguments.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }

    static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}

/// One call in a mixed pipeline.
public enum RedisCall: Sendable {
    case command(RedisCommand)
    case script(RedisScript, keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible])

    var name: String {
        switch self {
        case .command(let command): return command.name
        case .script(let script, _, _): return "EVALSHA \(script.name)"
        }
    }
}

extension RedisReply {
    /// Throws an error reply as a `RedisError`; returns any other reply unchanged.
    public func throwingServerError(address: String, command: String) throws -> RedisReply {
        if case .error(let message) = self {
            let code: RedisError.Code = message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") ? .authentication : .server
            throw RedisError(code: code, address: address, command: command, message: message)
        }
        return self
    }
}
