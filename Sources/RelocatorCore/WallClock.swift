#if canImport(Glibc)
import Glibc
#endif

/// This process's wall clock, in ms since 1970: for what is shown to people and for the few times
/// that are this process's own. Times the queue compares are taken from Redis' clock instead.
public enum WallClock {
    public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// This process's monotonic clock, in ms from an arbitrary start: never stepped, so a difference of
/// two readings is a duration whatever the wall clock did meanwhile.
public enum MonotonicClock {
    public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
