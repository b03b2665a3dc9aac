import Synchronization

/// A Lua script run with EVALSHA. The server loads it on first use and again after `SCRIPT FLUSH`
/// or a restart (`NOSCRIPT`), so callers never send the source with every call.
///
/// A script may be made of a shared prelude and a body read from a file: Redis numbers the lines of
/// the whole source (`user_script:<line>`), and `translate(_:)` turns that back into the file and
/// line a reader can open (`enqueue.lua:12`, or `helpers.lua:3` for a line of the prelude).
///
/// A body whose first line is a Redis 7 shebang (`#!lua` or `#!lua flags=allow-oom`) keeps that
/// line first, ahead of the prelude: Redis reads the flags only from the script's first line. A
/// script with a shebang and without `allow-oom` (or `no-writes`) is refused before it runs while
/// the server is over its `maxmemory`; without one it would be refused only at its first write that
/// adds memory, after a `DEL` had already gone through.
public final class RedisScript: Sendable {
    public let source: String
    /// The file the body comes from, e.g. `enqueue.lua`.
    public let name: String
    /// The file the prelude comes from, and how many lines it has (0: no prelude).
    public let preludeName: String
    public let preludeLines: Int
    /// Lines of the body ahead of the prelude (1 for a shebang, else 0).
    public let headerLines: Int
    private let sha = Mutex<String?>(nil)

    public init(_ source: String, name: String = "script", preludeName: String = "", preludeLines: Int = 0, headerLines: Int = 0) {
        self.source = source
        self.name = name
        self.preludeName = preludeName
        self.preludeLines = preludeLines
        self.headerLines = headerLines
    }

    /// Builds the script from a prelude and a body: the body's line n is line `prelude lines + n`
    /// (a shebang, the body's line 1, stays line 1, the prelude following it).
    public convenience init(name: String, body: String, preludeName: String = "", prelude: String = "") {
        var text = prelude
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        let lines = text.isEmpty ? 0 : text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        if body.hasPrefix("#!"), let end = body.firstIndex(of: "\n") {
            let shebang = body[...end]
            self.init(shebang + text + body[body.index(after: end)...], name: name, preludeName: preludeName, preludeLines: lines,
                      headerLines: 1)
        } else {
            self.init(text + body, name: name, preludeName: preludeName, preludeLines: lines)
        }
    }

    /// The flags the script declares in its shebang (`allow-oom`, `no-writes`…); nil without one.
    public var flags: [String]? {
        guard source.hasPrefix("#!") else { return nil }
        let line = source.prefix { $0 != "\n" }
        guard let range = line.range(of: "flags=") else { return [] }
        return line[range.upperBound...].prefix { $0 != " " }.split(separator: ",").map(String.init)
    }

    /// The SHA1 the server answered to the last `SCRIPT LOAD`, if any.
    var loadedSHA: String? {
        get { sha.withLock { $0 } }
        set { sha.withLock { $0 = newValue } }
    }

    /// `EVALSHA sha numkeys keys… arguments…`, each argument's bytes laid out once (no
    /// concatenated arrays of existentials on every call).
    func command(sha: String, keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible]) -> RedisCommand {
        var all: [[UInt8]] = []
        all.reserveCapacity(3 + keys.count + arguments.count)
        all.append(Array("EVALSHA".utf8))
        all.append(Array(sha.utf8))
        all.append(keys.count.redisArgument)
        for key in keys { all.append(key.redisArgument) }
        for argument in arguments { all.append(argument.redisArgument) }
        return RedisCommand(bytes: all)
    }

    /// A server error message with every `user_script:<line>` turned into `<file>:<line>`.
    public func translate(_ message: String) -> String {
        var out = ""
        var rest = Substring(message)
        let marker = "user_script:"
        while let range = rest.range(of: marker) {
            out += rest[..<range.lowerBound]
            rest = rest[range.upperBound...]
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard let line = Int(digits) else {
                out += marker
                continue
            }
            rest = rest.dropFirst(digits.count)
            if line <= headerLines {
                out += "\(name):\(line)"
            } else if line <= headerLines + preludeLines {
                out += "\(preludeName):\(line - headerLines)"
            } else {
                out += "\(name):\(line - preludeLines)"
            }
        }
        return out + rest
    }
}
