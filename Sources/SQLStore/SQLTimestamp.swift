import RelocatorCore

/// Time values as every dialect returns them, read as RFC 3339 in UTC: `2026-11-27T21:47:15Z`,
/// fractional seconds kept when the database stores them (`2026-11-27T21:47:15.123456Z`), without
/// trailing zeros.
///
/// PostgreSQL answers `timestamptz` in the session's zone (`2026-11-27 22:47:15.123+01`, even
/// `+05:53:28` for old local mean times); MariaDB `DATETIME(6)` has no zone (Relocator writes UTC:
/// its sessions use `time_zone = '+00:00'`); SQLite keeps the text it was given
/// (`strftime('%Y-%m-%d %H:%M:%f')`, also UTC). A value without a zone is UTC.
public enum SQLTimestamp {
    /// The RFC 3339 UTC form of a time read from SQL; nil when `text` is not a date and time.
    public static func rfc3339(_ text: String) -> String? {
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.skip("-"),
              let month = scanner.number(digits: 2), scanner.skip("-"),
              let day = scanner.number(digits: 2), scanner.skip(" ") || scanner.skip("T") || scanner.skip("t"),
              let hour = scanner.number(digits: 2), scanner.skip(":"),
              let minute = scanner.number(digits: 2), scanner.skip(":"),
              let second = scanner.number(digits: 2)
        else { return nil }
        var fraction = ""
        if scanner.skip(".") {
            while let digit = scanner.digit() { fraction.append(Character(UnicodeScalar(UInt8(ascii: "0") + UInt8(digit)))) }
            if fraction.isEmpty { return nil }
            // `15.120000` (DATETIME(6)) is `15.12`; `15.000000` is `15`.
            while fraction.last == "0" { fraction.removeLast() }
        }
        var offset = 0
        if scanner.skip("Z") || scanner.skip("z") || scanner.atEnd {
            offset = 0
        } else if let sign = scanner.sign() {
            guard let hours = scanner.number(digits: 2) else { return nil }
            var minutes = 0, seconds = 0
            if scanner.skip(":") {
                guard let m = scanner.number(digits: 2) else { return nil }
                minutes = m
                if scanner.skip(":") {
                    guard let s = scanner.number(digits: 2) else { return nil }
                    seconds = s
                }
            } else if let m = scanner.number(digits: 2) {
                minutes = m
            }
            offset = sign * (hours * 3600 + minutes * 60 + seconds)
        } else {
            return nil
        }
        guard scanner.atEnd, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
              hour < 24, minute < 60, second < 61
        else { return nil }

        var (y, mo, d, h, mi, s) = (year, month, day, hour, minute, second)
        if offset != 0 {
            let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
            let dayNumber = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
            let inDay = seconds - dayNumber * 86_400
            let (year, month, day) = TimeText.civil(days: Int64(dayNumber))
            (y, mo, d) = (Int(year), Int(month), Int(day))
            (h, mi, s) = (inDay / 3600, inDay / 60 % 60, inDay % 60)
        }
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(y, 4))-\(pad(mo, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2))" + (fraction.isEmpty ? "" : "." + fraction) + "Z"
    }

    /// MariaDB's "zero" date, which some old rows hold for "no time".
    static func isZeroDate(_ text: String) -> Bool {
        text.hasPrefix("0000-00-00")
    }

    private static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    private static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(character.value) else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int? {
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
            defer { index += 1 }
            return Int(bytes[index] - UInt8(ascii: "0"))
        }

        mutating func number(digits count: Int) -> Int? {
            var value = 0
            for _ in 0..<count {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        mutating func sign() -> Int? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }
    }
}

extension SQLRow {
    /// A time column as RFC 3339 UTC (see `SQLTimestamp`); throws when it is NULL or not a time.
    public func decodeTimestamp(_ column: String) throws -> String {
        guard let time = try decodeTimestampIfPresent(column) else {
            throw SQLError(code: .decoding, message: "column '\(column)' holds NULL, not a time")
        }
        return time
    }

    /// A time column as RFC 3339 UTC, or nil when it is NULL (or MariaDB's zero date).
    public func decodeTimestampIfPresent(_ column: String) throws -> String? {
        guard let text = try decodeIfPresent(column, as: String.self) else { return nil }
        if SQLTimestamp.isZeroDate(text) { return nil }
        guard let time = SQLTimestamp.rfc3339(text) else {
            throw SQLError(code: .decoding, message: "column '\(column)' holds '\(text.prefix(40))', which is not a date and time")
        }
        return time
    }
}
