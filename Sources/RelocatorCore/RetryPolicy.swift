/// When to try a failed job again: before attempt n (n ≥ 1 counts the failures so far) wait
/// `min(cap, base · 2^(n-1))`, drawn uniformly from `[delay/2, delay]` (full jitter), for at most
/// `maxAttempts` attempts in all.
public struct RetryPolicy: Equatable, Sendable {
    public var base: Duration
    public var cap: Duration
    public var maxAttempts: Int

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(300), maxAttempts: Int = 5) {
        self.base = base
        self.cap = cap
        self.maxAttempts = maxAttempts
    }

    public static let `default` = RetryPolicy()

    /// The delay before the next attempt without jitter, after `failures` failed attempts (≥ 1).
    public func ceiling(afterFailures failures: Int) -> Duration {
        let exponent = failures <= 1 ? 0 : min(failures - 1, 62)
        let baseMs = base.milliseconds
        let (scaled, overflow) = baseMs.multipliedReportingOverflow(by: Int64(1) << exponent)
        let capMs = cap.milliseconds
        return .milliseconds(overflow ? capMs : min(capMs, scaled))
    }

    /// The jittered delay: `unit` is a uniform draw in [0, 1] (injected so tests need no randomness).
    public func delay(afterFailures failures: Int, unit: Double) -> Duration {
        if Mutant.zeroBackoff.isActive { return .zero }
        let ceiling = ceiling(afterFailures: failures).milliseconds
        let low = ceiling / 2
        let drawn = low + Int64(clamping: (Double(ceiling - low) * min(max(unit, 0), 1)).rounded(), to: 0...max(0, ceiling - low))
        return .milliseconds(drawn)
    }

    public func delay(afterFailures failures: Int) -> Duration {
        delay(afterFailures: failures, unit: Double.random(in: 0...1))
    }

    /// True when a job that has failed `failures` times may still be tried again.
    public func allowsRetry(afterFailures failures: Int) -> Bool { failures < maxAttempts }
}

extension Duration {
    /// Whole milliseconds (truncated); a duration beyond Int64's milliseconds (seconds read from
    /// SQL, say) gives the nearest bound rather than a trap.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.saturatingMultiply(1000).saturatingAdd(attoseconds / 1_000_000_000_000_000)
    }
}

extension RetryPolicy {
    /// How loops wait between calls to a server that does not answer (Redis, the database):
    /// 100 ms doubling up to 5 s, with jitter, for as long as it takes.
    public static let reconnect = RetryPolicy(base: .milliseconds(100), cap: .seconds(5), maxAttempts: .max)
}
