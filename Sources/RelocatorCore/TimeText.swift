/// Times and ages as the commands print them: RFC 3339 in UTC with milliseconds (the form the
/// SQL layer reads times in, `2026-11-27T21:47:15.123Z`), and short ages (`850ms`, `12.4s`,
/// `5m03s`, `2h10m`, `3d04h`).
public enum TimeText {
    /// RFC 3339 UTC of a time in milliseconds since 1970.
    public static func rfc3339(milliseconds: Int64) -> String {
        let seconds = milliseconds.floorDivided(by: 1000)
        // The remainder fits whatever the time (a value read from Redis may be Int64.min): the
        // wrapping operations give it without an intermediate overflow.
        let millis = milliseconds &- seconds &* 1000
        let days = seconds.floorDivided(by: 86400)
        let secondOfDay = seconds - days * 86400
        let (year, month, day) = civil(days: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):"
            + "\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    /// A short age or duration: `850ms`, `12.4s`, `5m03s`, `2h10m`, `3d04h`. Negative values
    /// (a clock behind another) read as 0.
    public static func age(milliseconds: Int64) -> String {
        let ms = max(0, milliseconds)
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return "\((Double(ms) / 1000).formatted(decimals: 1))s" }
        let seconds = ms / 1000
        if seconds < 3600 { return "\(seconds / 60)m\(pad(seconds % 60, 2))s" }
        if seconds < 86400 { return "\(seconds / 3600)h\(pad(seconds % 3600 / 60, 2))m" }
        return "\(seconds / 86400)d\(pad(seconds % 86400 / 3600, 2))h"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    /// Year, month, day of a day number since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    public static func civil(days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// Division rounding towards negative infinity.
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
