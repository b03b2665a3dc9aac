import ArgumentParser
import FileMover
import Foundation
import RelocatorCore

/// Parsers for numeric options: each reads the value itself (so `--limit -5` and `--limit=-5` are
/// read as numbers, with `parsing: .unconditional`, rather than as an unknown flag) and refuses a
/// value outside its range with the range:
/// `The value '99999' is invalid for '--port <port>': 99999 is too large; expected a whole number from 0 to 65535`.
enum OptionValue {
    static func int(_ range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
        let wide = Int64(range.lowerBound)...Int64(range.upperBound)
        return { text in Int(try whole(text, wide)) }
    }

    static func int64(_ range: ClosedRange<Int64>) -> @Sendable (String) throws -> Int64 {
        { text in try whole(text, range) }
    }

    /// A percentage from 0 to 100, or `none` to clear the setting.
    static let percent: @Sendable (String) throws -> LevelPolicy.Change<Int> = { text in
        if text == "none" { return .clear }
        return .set(Int(try whole(text, 0...100)))
    }

    /// A whole number ≥ 0, or `none` to clear the setting.
    static let count: @Sendable (String) throws -> LevelPolicy.Change<Int> = { text in
        if text == "none" { return .clear }
        return .set(Int(try whole(text, 0...Int64(Int32.max))))
    }

    /// Any whole number, or `none`.
    static let priority: @Sendable (String) throws -> LevelPolicy.Change<Int> = { text in
        if text == "none" { return .clear }
        return .set(Int(try whole(text, Int64(Int32.min)...Int64(Int32.max))))
    }

    /// `90s`, `1h`, `7d`…, or `none`.
    static let duration: @Sendable (String) throws -> LevelPolicy.Change<Int64> = { text in
        if text == "none" { return .clear }
        do throws(OperatorValues.Invalid) {
            return .set(try OperatorValues.durationSeconds(text))
        } catch {
            throw ValidationError(error.reason)
        }
    }

    /// `200MiB`, `1GB`, `1048576`… (bytes per second), or `none`.
    static let bandwidth: @Sendable (String) throws -> LevelPolicy.Change<Int64> = { text in
        if text == "none" { return .clear }
        do throws(OperatorValues.Invalid) {
            return .set(try OperatorValues.bytes(text.hasSuffix("/s") ? String(text.dropLast(2)) : text))
        } catch {
            throw ValidationError(error.reason)
        }
    }

    private static func whole(_ text: String, _ range: ClosedRange<Int64>) throws -> Int64 {
        do throws(OperatorValues.Invalid) {
            return try OperatorValues.wholeNumber(text, in: range)
        } catch {
            throw ValidationError(error.reason)
        }
    }
}

/// The key of a `--transfer-secret-file`; a file that cannot be read or holds too little is
/// refused, naming the file and never its content.
func readTransferSigningKey(_ path: String) throws -> TransferSigningKey {
    let bytes: [UInt8]
    do {
        bytes = try SettingFile.read(path)
    } catch {
        throw CommandFailure("--transfer-secret-file \(error)")
    }
    do {
        return try TransferSigningKey(bytes: bytes)
    } catch {
        throw CommandFailure("--transfer-secret-file \(path) \(error)")
    }
}
