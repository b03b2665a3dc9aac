import ArgumentParser
import SQLStore
import Foundation
import RelocatorServices
import RelocatorCore

/// Settings of the parts that use Redis: flags win over environment variables, which win over
/// the defaults. A bad value stops the process with one line naming the setting.
///
/// | variable | flag | default |
/// |---|---|---|
/// | `REDIS_URL` | `--redis-url` | `redis://127.0.0.1:6379/0` |
/// | `RELOCATOR_PREFIX` | `--prefix` | `{relocator}` |
/// | `RELOCATOR_LEVELS` | `--level-dirs` | (needed by workers only) |
/// | `RELOCATOR_RETRY_BASE_MS`, `RELOCATOR_RETRY_CAP_MS`, `RELOCATOR_MAX_ATTEMPTS` | | 1000, 300000, 5 (at most ten years, a million attempts) |
/// | `RELOCATOR_JOB_TTL` (seconds a committed job stays readable) | | 86400 (at most ten years) |
/// | `RELOCATOR_HEARTBEAT_TTL_MS` | | 10000 (300 to 3600000) |
/// | `RELOCATOR_DEFER_RETRY_MS` (how long a move waiting for room on its target waits before it looks again) | | 30000 |
/// | `RELOCATOR_SQL_TIMEOUT_MS` (how long a SQL statement may run; 0: no limit; read as every command starts) | | 30000 |
/// | `RELOCATOR_SHARDS` | | 1 |
/// | `RELOCATOR_REDIS_MIN_REPLICAS`, `RELOCATOR_REDIS_REPLICA_TIMEOUT_MS` (serve and the operator commands) | | 0, 1000 |
/// | `RELOCATOR_CHECKSUM` | | `xxh128` |
/// | `RELOCATOR_HALF_LIFE` (hit counters decay; placement uses decayed counts) | | none: counts are absolute |
/// | `RELOCATOR_LOG_LEVEL`, `RELOCATOR_LOG_FORMAT` | `--log-format` | `info`, `text` (read in Logs.swift) |
struct RuntimeOptions: ParsableArguments {
    @Option(name: .customLong("redis-url"),
            help: "redis://[[user]:password@]host[:port][/db], redis-cluster://[[user]:password@]host:port,host:port or redis-sentinel://[[user]:password@]host:port,host:port/MASTER[/db] (default: $REDIS_URL, else redis://127.0.0.1:6379/0).")
    var redisURL: String?

    @Option(help: "Prefix of every Redis key (default: $RELOCATOR_PREFIX, else {relocator}).")
    var prefix: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func redis() throws -> RedisURL {
        if let flag = redisURL { return try RedisURL(parsing: flag, setting: "--redis-url") }
        if let value = environment["REDIS_URL"], !value.isEmpty { return try RedisURL(parsing: value) }
        return .default
    }

    /// Where the servers are, for the composition root. `replicated`: whether the command's writes
    /// wait for the replicas `replication()` asks for (a read-only command leaves it unread).
    func servers(database: DatabaseURL, replicated: Bool = true) throws -> Composition.Servers {
        Composition.Servers(redis: try redis(), replicas: replicated ? try replication() : nil, keys: try keys(), database: database)
    }

    func keys() throws -> KeySchema {
        let value = prefix ?? environment["RELOCATOR_PREFIX"].flatMap { $0.isEmpty ? nil : $0 } ?? KeySchema.defaultPrefix
        let setting = prefix == nil ? "RELOCATOR_PREFIX" : "--prefix"
        // (An empty --prefix would name keys no other process reads, where an empty
        // RELOCATOR_PREFIX means the default.)
        guard !value.isEmpty, value.count <= 64, !value.contains(where: { $0.isWhitespace }) else {
            throw ConfigurationError(setting: setting, expected: "1 to 64 characters without spaces")
        }
        let shards = Int(try integer("RELOCATOR_SHARDS", default: 1, minimum: 1))
        do {
            return try KeySchema(prefix: value, shards: shards)
        } catch let error as KeySchema.Invalid {
            throw ConfigurationError(setting: shards > 1 ? "RELOCATOR_SHARDS" : setting, expected: error.description)
        }
    }

    func retryPolicy() throws -> RetryPolicy {
        RetryPolicy(base: .milliseconds(try integer("RELOCATOR_RETRY_BASE_MS", default: 1000, minimum: 1, maximum: Self.longestMilliseconds)),
                    cap: .milliseconds(try integer("RELOCATOR_RETRY_CAP_MS", default: 300_000, minimum: 1, maximum: Self.longestMilliseconds)),
                    maxAttempts: Int(try integer("RELOCATOR_MAX_ATTEMPTS", default: 5, minimum: 1, maximum: 1_000_000)))
    }

    /// `RELOCATOR_REDIS_MIN_REPLICAS` (replicas that must hold a submission or an operator's change
    /// before it is acknowledged; 0, the default, waits for none) and
    /// `RELOCATOR_REDIS_REPLICA_TIMEOUT_MS` (how long to wait for them; 1000).
    func replication() throws -> (count: Int, timeout: Duration)? {
        let replicas = try integer("RELOCATOR_REDIS_MIN_REPLICAS", default: 0, minimum: 0)
        guard replicas > 0 else { return nil }
        guard replicas <= 64 else {
            throw ConfigurationError(setting: "RELOCATOR_REDIS_MIN_REPLICAS", expected: "a whole number from 0 to 64, got \(replicas)")
        }
        let timeout = try integer("RELOCATOR_REDIS_REPLICA_TIMEOUT_MS", default: 1000, minimum: 1)
        guard timeout <= 60_000 else {
            throw ConfigurationError(setting: "RELOCATOR_REDIS_REPLICA_TIMEOUT_MS", expected: "a whole number from 1 to 60000, got \(timeout)")
        }
        return (Int(replicas), .milliseconds(timeout))
    }

    func jobTTL() throws -> Duration { .seconds(try integer("RELOCATOR_JOB_TTL", default: 86400, minimum: 1, maximum: Self.longestMilliseconds / 1000)) }

    /// At most an hour: a worker that stopped is found gone one heartbeat after its last.
    func heartbeatTTL() throws -> Duration {
        .milliseconds(try integer("RELOCATOR_HEARTBEAT_TTL_MS", default: 10_000, minimum: 300, maximum: 3_600_000))
    }

    func deferRetry() throws -> Duration {
        .milliseconds(try integer("RELOCATOR_DEFER_RETRY_MS", default: 30_000, minimum: 100, maximum: Self.longestMilliseconds))
    }

    /// How long a SQL statement may run (`SessionLimits`), ms; 0: no limit.
    func sqlTimeoutMilliseconds() throws -> Int64 {
        try integer(SessionLimits.answerTimeoutSetting, default: SessionLimits.defaultAnswerTimeout.milliseconds, minimum: 0,
                    maximum: Self.longestMilliseconds)
    }

    /// The longest time a setting may give, in milliseconds: ten years (every setting of a time
    /// becomes a Redis expiry or a score, which must stay far from Int64's end).
    static let longestMilliseconds: Int64 = 10 * 365 * 86_400_000

    /// A whole-number environment variable, from `minimum` to `maximum`.
    func integer(_ name: String, default fallback: Int64, minimum: Int64, maximum: Int64 = Int64.max) throws -> Int64 {
        guard let text = environment[name], !text.isEmpty else { return fallback }
        guard let value = Int64(text), value >= minimum, value <= maximum else {
            let range = maximum == Int64.max ? "≥ \(minimum)" : "from \(minimum) to \(maximum)"
            throw ConfigurationError(setting: name, expected: "a whole number \(range), got '\(text.prefix(40))'")
        }
        return value
    }

    /// The level directories: `--level-dirs`, else `RELOCATOR_LEVELS`; the setting they came from.
    func levelDirectories(flag: String?) throws -> (directories: LevelDirectories, setting: String) {
        if let flag { return (try LevelDirectories(parsing: flag, setting: "--level-dirs"), "--level-dirs") }
        guard let value = environment["RELOCATOR_LEVELS"], !value.isEmpty else {
            throw ConfigurationError(setting: "RELOCATOR_LEVELS", expected: "level=directory pairs, e.g. gold=/data/ssd,silver=/data/hdd (or --level-dirs)")
        }
        return (try LevelDirectories(parsing: value), "RELOCATOR_LEVELS")
    }

    /// The half-life of hit counters: `RELOCATOR_HALF_LIFE` (`24h`, `7d`…), nil when unset (counts
    /// are absolute, as in the original).
    func halfLife() throws -> Duration? {
        guard let text = environment["RELOCATOR_HALF_LIFE"], !text.isEmpty else { return nil }
        let seconds: Int64
        do {
            seconds = try OperatorValues.durationSeconds(text)
        } catch {
            throw ConfigurationError(setting: "RELOCATOR_HALF_LIFE", expected: error.description)
        }
        // (0 would halve a count in no time at all: counts without decay leave it unset.)
        guard seconds > 0 else {
            throw ConfigurationError(setting: "RELOCATOR_HALF_LIFE", expected: "a duration above 0 such as 24h, or unset for counts that do not decay (got '\(text.prefix(40))')")
        }
        return .seconds(seconds)
    }

    /// The checksum of moves: `RELOCATOR_CHECKSUM` (`xxh128`, the default, or `sha256`).
    func checksumAlgorithm() throws -> ChecksumAlgorithm {
        guard let text = environment["RELOCATOR_CHECKSUM"], !text.isEmpty else { return .xxh128 }
        return try ChecksumAlgorithm(parsing: text, setting: "RELOCATOR_CHECKSUM")
    }
}
