/// The range of a view count, and conversions that cannot trap on a number from outside (a
/// request, Redis, SQL, a clock).
///
/// A count is a whole number from 0 to 2^53 − 1 = 9,007,199,254,740,991: the largest integer every
/// JSON client represents exactly (a JavaScript or Python float holds every whole number up to
/// there and no further), so a count this service answers with is the count the client sent. A
/// count beyond it is refused with a message naming the bound; a decayed count (a hit counter, a
/// resident's score) is clamped to it.
public enum CountBound {
    public static let max: Int64 = 9_007_199_254_740_991
    public static let range: ClosedRange<Int64> = 0...max

    /// How a message names the bound.
    public static let text = "9007199254740991 (2^53 − 1, the largest whole number every JSON client holds exactly)"

    /// `value` as a count: rounded down and clamped to `0…max`; NaN is 0.
    public static func clamped(_ value: Double) -> Int64 { Int64(clamping: value, to: range) }
}

extension Int64 {
    /// `value` rounded down, clamped to `range` (by default every Int64): never traps, whatever
    /// the value — NaN gives the lower bound, ±infinity the bounds.
    public init(clamping value: Double, to range: ClosedRange<Int64> = Int64.min...Int64.max) {
        guard !value.isNaN else {
            self = range.lowerBound
            return
        }
        let down = value.rounded(.down)
        // Double(Int64.max) is 2^63, one above it: comparisons at the bounds are on the Double side.
        if down <= Double(range.lowerBound) {
            self = range.lowerBound
        } else if down >= Double(range.upperBound) {
            self = range.upperBound
        } else {
            self = Swift.min(Swift.max(Int64(down), range.lowerBound), range.upperBound)
        }
    }

    /// The sum, or the nearest bound when it overflows.
    public func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// The difference, or the nearest bound when it overflows.
    public func saturatingSubtract(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    /// The product, or the nearest bound when it overflows.
    public func saturatingMultiply(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }
}
