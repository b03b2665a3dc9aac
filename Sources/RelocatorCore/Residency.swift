/// The residency rule, in one place on this side (helpers.lua's `residencyDue` is its twin in the
/// scripts): a content that last moved at `moved` (ms; nil: never) onto a level that keeps contents
/// `residency` ms waits until `moved + residency`. Returns that time while the window lasts at
/// `now`, else nil.
public enum Residency {
    public static func due(residency: Int64, moved: Int64?, now: Int64) -> Int64? {
        guard residency > 0, let moved else { return nil }
        let end = moved.saturatingAdd(residency)
        return end > now ? end : nil
    }
}
