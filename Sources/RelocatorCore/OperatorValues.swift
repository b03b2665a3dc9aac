/// Values an operator types on the command line — whole numbers within a range, durations such as
/// `90s` or `7d`, sizes such as `200MiB` — parsed by pure functions whose errors say what was
/// wrong with the value in one line, and formatted back the same way.
public enum OperatorValues {
    /// Why a value cannot be used: one line, without the name of the setting (the caller's
    /// message names it).
    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let reason: String

        public init(_ reason: String) {
            self.reason = reason
        }

        public var description: String { reason }
    }

    // MARK: - Whole numbers

    /// A whole number in `range`, written in decimal with an optional sign: `-5` is read (and
    /// refused with the range when the range has no negative numbers), `99999999999999999999999` is
    /// "too large".
    public static func wholeNumber(_ text: String, in range: ClosedRange<Int64>) throws(Invalid) -> Int64 {
        let trimmed = text.trimmingSpaces()
        let expected = rangeText(range)
        guard !trimmed.isEmpty else { throw Invalid("expected \(expected), got nothing") }
        var digits = Substring(trimmed)
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw Invalid("'\(trimmed.prefix(40))' is not a whole number; expected \(expected)")
        }
        guard let value = Int64(trimmed.hasPrefix("+") ? String(trimmed.dropFirst()) : trimmed) else {
            throw Invalid("\(trimmed.prefix(40)) is too \(negative ? "small" : "large"); expected \(expected)")
        }
        guard range.contains(value) else {
            throw Invalid("\(value) is too \(value < range.lowerBound ? "small" : "large"); expected \(expected)")
        }
        return value
    }

    /// `a whole number from 1 to 65535`, `a whole number ≥ 0`.
    public static func rangeText(_ range: ClosedRange<Int64>) -> String {
        switch (range.lowerBound, range.upperBound) {
        case (Int64.min, Int64.max): return "a whole number"
        case (let low, Int64.max): return "a whole number ≥ \(low) (at most \(Int64.max))"
        default: return "a whole number from \(range.lowerBound) to \(range.upperBound)"
        }
    }

    // MARK: - Durations

    /// Seconds from `90`, `90s`, `15m`, `1h`, `7d`, `2w` or a sum such as `1h30m`. A bare number is
    /// seconds. Nothing negative, nothing above `maximum` seconds.
    public static func durationSeconds(_ text: String, maximum: Int64 = 10 * 365 * 86400) throws(Invalid) -> Int64 {
        let trimmed = text.trimmingSpaces()
        let expected = "a duration such as 90s, 15m, 1h, 7d or 1h30m"
        guard !trimmed.isEmpty else { throw Invalid("expected \(expected), got nothing") }
        if trimmed.hasPrefix("-") { throw Invalid("'\(trimmed.prefix(40))' is negative; expected \(expected)") }
        var total: Int64 = 0
        var number = ""
        var sawUnit = false
        func add(_ unit: Int64) throws(Invalid) {
            // `number` is digits only: a failed conversion is a number too large.
            let value = Int64(number) ?? Int64.max
            let (product, overflow) = value.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow, !overflow2, sum <= maximum else {
                throw Invalid("\(trimmed.prefix(40)) is too long; at most \(formatDuration(seconds: maximum))")
            }
            total = sum
            number = ""
        }
        for character in trimmed {
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            guard !number.isEmpty, let unit = durationUnits[character] else {
                throw Invalid("'\(trimmed.prefix(40))' is not \(expected)")
            }
            try add(unit)
            sawUnit = true
        }
        if !number.isEmpty {
            guard !sawUnit else { throw Invalid("'\(trimmed.prefix(40))' is not \(expected) (a unit is missing at the end)") }
            try add(1)
        }
        return total
    }

    private static let durationUnits: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400]

    /// `90s`, `15m`, `1h30m`, `7d`: the largest units that divide the value exactly.
    public static func formatDuration(seconds: Int64) -> String {
        if seconds == 0 { return "0s" }
        var rest = seconds
        var text = ""
        for (unit, size) in [("w", Int64(7 * 86400)), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            text += "\(rest / size)\(unit)"
            rest %= size
        }
        return text
    }

    // MARK: - Sizes

    /// Bytes from `1048576`, `200MiB`, `1.5GiB`, `500MB`, `64k`. Binary units (`KiB`, `MiB`,
    /// `GiB`, `TiB`, and `K`, `M`, `G`, `T` alone) are powers of 1024; `kB`, `MB`, `GB`, `TB`
    /// powers of 1000; `B` or no unit is bytes. Case does not matter.
    public static func bytes(_ text: String, maximum: Int64 = Int64.max) throws(Invalid) -> Int64 {
        let trimmed = text.trimmingSpaces()
        let expected = "a size such as 1048576, 200MiB, 1.5GiB or 500MB"
        guard !trimmed.isEmpty else { throw Invalid("expected \(expected), got nothing") }
        if trimmed.hasPrefix("-") { throw Invalid("'\(trimmed.prefix(40))' is negative; expected \(expected)") }
        let numberPart = trimmed.prefix { ($0.isASCII && $0.isNumber) || $0 == "." }
        let unitPart = trimmed.dropFirst(numberPart.count).trimmingSpaces().lowercased()
        guard !numberPart.isEmpty, numberPart.filter({ $0 == "." }).count <= 1, numberPart.first != ".", numberPart.last != "." else {
            throw Invalid("'\(trimmed.prefix(40))' is not \(expected)")
        }
        guard let multiplier = sizeUnits[unitPart] else {
            throw Invalid("'\(trimmed.prefix(40))': unknown unit '\(unitPart.prefix(10))'; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB")
        }
        let parts = numberPart.split(separator: ".", omittingEmptySubsequences: false)
        guard let whole = Int64(parts[0]) else { throw Invalid("\(trimmed.prefix(40)) is too large; at most \(maximum) bytes") }
        let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw Invalid("\(trimmed.prefix(40)) is too large; at most \(maximum) bytes") }
        var total = wholeBytes
        if parts.count == 2 {
            // The fraction of the unit, rounded down to a whole byte.
            if multiplier == 1, parts[1].contains(where: { $0 != "0" }) {
                throw Invalid("'\(trimmed.prefix(40))': a number of bytes is whole")
            }
            let fraction = Double("0." + parts[1]) ?? 0
            let (sum, overflow2) = total.addingReportingOverflow(Int64((fraction * Double(multiplier)).rounded(.down)))
            guard !overflow2 else { throw Invalid("\(trimmed.prefix(40)) is too large; at most \(maximum) bytes") }
            total = sum
        }
        guard total <= maximum else { throw Invalid("\(trimmed.prefix(40)) is too large; at most \(maximum) bytes") }
        return total
    }

    private static let sizeUnits: [String: Int64] = [
        "": 1, "b": 1,
        "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
        "kb": 1000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
    ]

    /// `200MiB`, `1.5GiB`, `512B`: binary units, at most one decimal, exact values without one.
    public static func formatBytes(_ bytes: Int64) -> String {
        let units: [(String, Int64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (unit, size) in units where bytes >= size {
            if bytes % size == 0 { return "\(bytes / size)\(unit)" }
            return "\((Double(bytes) / Double(size)).formatted(decimals: 1))\(unit)"
        }
        return "\(bytes)B"
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
