import CHiredis
import Foundation
import RelocatorCore

/// One hiredis context to one server (a standalone server, a cluster node, a sentinel or the
/// master a sentinel named): connects with a timeout, authenticates, selects the database, writes
/// commands and reads replies. Used by one thread at a time, through `RedisConnection`.
///
/// After an I/O error the context is dead: it is dropped and the next use connects again. An idle
/// connection that the server closed is noticed before the next command is written (`prepare`).
final class RedisNodeConnection {
    let endpoint: RedisURL.Endpoint
    /// `host:port`, for error messages.
    let address: String
    let username: String?
    let password: String?
    let database: Int
    let connectTimeout: Duration
    let commandTimeout: Duration

    private var context: UnsafeMutablePointer<redisContext>?
    /// SHA1s of the scripts this server is known to hold: loaded or run through this connection since
    /// it connected (a new connection may be to a restarted server, so it starts empty).
    private var knownScripts: Set<String> = []
    /// How many times `send` wrote a batch: one per round trip (for tests of pipelining).
    private(set) var batchesSent = 0
    /// Counts the connections made: a `WAIT` after a write must go to the connection that wrote
    /// (on a new one it would wait for nothing).
    private(set) var connectionNumber = 0

    init(endpoint: RedisURL.Endpoint, username: String?, password: String?, database: Int,
         connectTimeout: Duration, commandTimeout: Duration) {
        self.endpoint = endpoint
        self.address = endpoint.description
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    deinit { close() }

    var isConnected: Bool { context != nil }

    /// Connects (when not connected), authenticates and selects the database.
    func connect() throws {
        if context != nil { return }
        guard RedisURL.Endpoint.ports.contains(endpoint.port), let port = Int32(exactly: endpoint.port) else {
            throw RedisError(code: .connection, address: address, message: "cannot connect: port \(endpoint.port) is out of range")
        }
        guard let ctx = redisConnectWithTimeout(endpoint.host, port, Self.timeval(connectTimeout)) else {
            throw RedisError(code: .connection, address: address, message: "cannot allocate a connection")
        }
        if ctx.pointee.err != 0 {
            let message = Self.errorString(ctx)
            redisFree(ctx)
            throw RedisError(code: .connection, address: address, message: "cannot connect: \(message)")
        }
        redisSetTimeout(ctx, Self.timeval(commandTimeout))
        context = ctx
        connectionNumber += 1
        knownScripts = []
        do {
            if let password {
                let auth = username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
                do {
                    _ = try roundTrip([auth]).first!.throwingServerError(address: address, command: "AUTH")
                } catch var error as RedisError where error.code == .server || error.code == .authentication {
                    error.code = .authentication
                    error.message = "authentication failed: \(error.message)"
                    throw error
                }
            }
            if database != 0 {
                _ = try roundTrip([RedisCommand("SELECT", database)]).first!
                    .throwingServerError(address: address, command: "SELECT")
            }
        } catch {
            close()
            throw error
        }
    }

    /// Makes the connection ready for `command`: drops an idle connection the server closed, then
    /// connects. Nothing of `command` has been sent when this throws.
    func prepare(for command: String) throws {
        if let ctx = context, Self.peerClosed(ctx) { close() }
        do {
            try connect()
        } catch var error as RedisError where error.command == nil {
            error.command = command
            throw error
        }
    }

    /// True when the connection was open and the server has closed it since (it is then dropped).
    func droppedByServer() -> Bool {
        guard let ctx = context, Self.peerClosed(ctx) else { return false }
        close()
        return true
    }

    /// True when the server sent something not read yet, or closed the connection (a subscriber
    /// checks this before reading, without blocking).
    func hasInput() -> Bool {
        guard let ctx = context else { return false }
        return Self.peerClosed(ctx)
    }

    /// Reads one reply (a message pushed to a subscriber); `command` names it in errors.
    func readReply(for command: String) throws -> RedisReply {
        try read([RedisCommand(command)])[0]
    }

    /// A reply hiredis has already taken off the socket, if any; reads nothing more.
    func bufferedReply(for command: String) throws -> RedisReply? {
        guard let ctx = context else { return nil }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(ctx, &raw) == REDIS_OK else { throw ioFailure(ctx, command: command) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    func close() {
        if let ctx = context {
            redisFree(ctx)
            context = nil
        }
    }

    /// Sets the socket timeout (a blocking command stretches it by its block time).
    func setTimeout(_ timeout: Duration) {
        if let ctx = context { redisSetTimeout(ctx, Self.timeval(timeout)) }
    }

    // MARK: - Commands with their scripts

    /// What was written for one command: `SCRIPT LOAD` of its script when this server may not hold
    /// it, `ASKING` when a cluster redirect asked for it, then the command.
    struct Frame {
        let commands: [RedisCommand]
        let script: RedisScript?
        let loadsScript: Bool
    }

    /// One command and its reply. With `script` (the command is its EVALSHA), the script is loaded
    /// in the same round trip when this server may not hold it.
    func exchange(_ command: RedisCommand, script: RedisScript?, asking: Bool = false) throws -> RedisReply {
        try receive(send([(command, script)], asking: asking))[0]
    }

    /// Writes the commands (each with its script's `SCRIPT LOAD` when needed, each script once) and
    /// sends them now, without waiting for the replies (a pipeline over several nodes writes to all
    /// of them before reading).
    func send(_ items: [(command: RedisCommand, script: RedisScript?)], asking: Bool = false) throws -> [Frame] {
        var loading: Set<String> = []
        let frames = items.map { item -> Frame in
            var commands: [RedisCommand] = []
            var loads = false
            if let script = item.script, !knownScripts.contains(script.sha1), !loading.contains(script.sha1) {
                commands.append(RedisCommand("SCRIPT", "LOAD", script.source))
                loading.insert(script.sha1)
                loads = true
            }
            if asking { commands.append(RedisCommand("ASKING")) }
            commands.append(item.command)
            return Frame(commands: commands, script: item.script, loadsScript: loads)
        }
        let all = frames.flatMap(\.commands)
        batchesSent += 1
        try write(all)
        try flush(command: all.first?.name ?? "")
        return frames
    }

    /// Reads the replies of what `send` wrote: one per command. A script that failed to load
    /// answers with the load's error.
    func receive(_ frames: [Frame]) throws -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(frames.count)
        for frame in frames {
            let all = try read(frame.commands)
            var reply = all[all.count - 1]
            if let script = frame.script {
                if frame.loadsScript, case .error = all[0] {
                    reply = all[0]
                } else if frame.loadsScript, all[0].string != script.sha1 {
                    reply = .error("ERR SCRIPT LOAD answered SHA1 \(all[0].string ?? "?"), not the \(script.sha1) computed here")
                } else if reply.isNoScript {
                    knownScripts.remove(script.sha1)
                } else {
                    knownScripts.insert(script.sha1)
                }
            }
            replies.append(reply)
        }
        return replies
    }

    // MARK: - Plain commands

    /// Writes every command, then reads every reply, in order.
    func roundTrip(_ commands: [RedisCommand]) throws -> [RedisReply] {
        try write(commands)
        return try read(commands)
    }

    /// Writes the commands to the socket without waiting for replies (a pipeline over several nodes
    /// writes to all of them before reading).
    func write(_ commands: [RedisCommand]) throws {
        guard let ctx = context else {
            throw RedisError(code: .connection, address: address, command: commands.first?.name, message: "not connected")
        }
        for command in commands {
            let status = Self.withArgv(command.arguments) { argc, argv, lengths in
                redisAppendCommandArgv(ctx, argc, argv, lengths)
            }
            if status != REDIS_OK { throw ioFailure(ctx, command: command.name) }
        }
        RedisTraffic.wrote(commands.count)
    }

    /// Reads one reply per command written.
    func read(_ commands: [RedisCommand]) throws -> [RedisReply] {
        guard let ctx = context else {
            throw RedisError(code: .connection, address: address, command: commands.first?.name, message: "not connected")
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

    /// Sends the written commands now (hiredis otherwise sends them with the first read).
    func flush(command: String) throws {
        guard let ctx = context else {
            throw RedisError(code: .connection, address: address, command: command, message: "not connected")
        }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(ctx, &done) != REDIS_OK { throw ioFailure(ctx, command: command) }
        }
    }

    // MARK: - hiredis

    /// An idle connection must have nothing to read: readable (EOF or stray bytes) means the server
    /// closed it or the stream is out of step, and it must not be used for the next command.
    private static func peerClosed(_ ctx: UnsafeMutablePointer<redisContext>) -> Bool {
        var fds = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&fds, 1, 0) != 0
    }

    /// Turns the dead context's error into a `RedisError` and drops the context.
    private func ioFailure(_ ctx: UnsafeMutablePointer<redisContext>, command: String) -> RedisError {
        let message = Self.errorString(ctx)
        let timedOut = ctx.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
        close()
        if timedOut {
            return RedisError(code: .timeout, address: address, command: command, message: "no reply in time; the connection was closed")
        }
        let text = message.isEmpty ? "connection lost" : message
        return RedisError(code: .connection, address: address, command: command, message: text)
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
