import ArgumentParser
import Foundation
import Logging
import RelocatorCore
import Synchronization

/// How log lines look: `text` (`2026-11-27T21:47:15.123Z info relocator.worker: started levels=gold`)
/// or `json` (one object per line: `time`, `level`, `label`, `message`, `metadata`).
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// `--log-format`, which every command takes.
struct LogOptions: ParsableArguments {
    @Option(help: "Log lines as text or json, one JSON object per line (default: $RELOCATOR_LOG_FORMAT, else text).")
    var logFormat: LogFormat?
}

/// A command that takes `--log-format`.
protocol LoggedCommand: SendableMetatype {
    var logging: LogOptions { get }
}

/// The logging settings of a run: `--log-format` over `RELOCATOR_LOG_FORMAT`, and
/// `RELOCATOR_LOG_LEVEL`. A bad value stops the command with one line naming the setting and the
/// choices.
struct LogSettings: Equatable {
    var format: LogFormat
    var level: Logger.Level

    static let levelChoices = Logger.Level.allCases.map(\.rawValue)

    init(flag: LogFormat?, environment: [String: String]) throws {
        if let flag {
            format = flag
        } else if let text = environment["RELOCATOR_LOG_FORMAT"], !text.isEmpty {
            guard let value = LogFormat(rawValue: text) else {
                throw ConfigurationError(setting: "RELOCATOR_LOG_FORMAT",
                                         expected: "one of \(LogFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text.prefix(40))')")
            }
            format = value
        } else {
            format = .text
        }
        if let text = environment["RELOCATOR_LOG_LEVEL"], !text.isEmpty {
            guard let value = Logger.Level(rawValue: text) else {
                throw ConfigurationError(setting: "RELOCATOR_LOG_LEVEL",
                                         expected: "one of \(Self.levelChoices.joined(separator: ", ")) (got '\(text.prefix(40))')")
            }
            level = value
        } else {
            level = .info
        }
    }
}

/// Logs to standard error; bootstrapped once, by `Relocator.main`, never by a library.
enum Logs {
    static let settings = Mutex<LogSettings?>(nil)

    static func bootstrap(_ chosen: LogSettings) {
        settings.withLock { $0 = chosen }
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: chosen.format, logLevel: chosen.level)
        }
    }

    /// A logger at the configured level.
    static func logger(_ label: String) -> Logger {
        Logger(label: label)
    }
}

/// Writes each event as one line on standard error (one `write(2)`, so lines of threads never mix).
struct LineLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: LogFormat, logLevel: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let time = WallClock.milliseconds()
        let line = format == .json
            ? LogLine.json(milliseconds: time, level: event.level, label: label, message: event.message.description, metadata: merged)
            : LogLine.text(milliseconds: time, level: event.level, label: label, message: event.message.description, metadata: merged)
        StandardError.write(line + "\n")
    }
}

/// The two line formats, as pure functions.
enum LogLine {
    /// `2026-11-27T21:47:15.123Z info relocator.worker: started concurrency=4 levels=gold,silver`.
    static func text(milliseconds: Int64, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(TimeText.rfc3339(milliseconds: milliseconds)) \(level.rawValue) \(label): \(FailureReport.oneLine(message))"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(FailureReport.oneLine(metadata[key]!.description))"
        }
        return line
    }

    /// `{"label":"relocator.worker","level":"info","message":"started","metadata":{"levels":"gold"},"time":"…"}`.
    static func json(milliseconds: Int64, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        let object: [String: Any] = [
            "time": TimeText.rfc3339(milliseconds: milliseconds), "level": level.rawValue, "label": label, "message": message,
            "metadata": metadata.mapValues(plain),
        ]
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        } catch {
            // Every value above is a string, array or dictionary of strings: this cannot happen,
            // but a log line is never dropped in silence.
            return "{\"level\":\"error\",\"message\":\"a log line could not be encoded as JSON\"}"
        }
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let item): return item.description
        case .array(let items): return items.map(plain)
        case .dictionary(let items): return items.mapValues(plain)
        }
    }
}
