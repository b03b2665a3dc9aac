/// The half-life the counts in Redis are kept with (`RELOCATOR_HALF_LIFE`), recorded by the first
/// API or committer that starts (`ControlAction.agreeOnHalfLife`), and a process whose setting
/// differs, refused: a count kept without a half-life read as a decaying score is a count near 0
/// (every content demoted at once), a decaying score read as a count one in the millions.
public struct HalfLifeChange: Error, CustomStringConvertible, Sendable {
    /// Milliseconds; 0: counts are absolute (no half-life).
    public let recorded: Int64
    public let wanted: Int64

    public init(recorded: Int64, wanted: Int64) {
        self.recorded = recorded
        self.wanted = wanted
    }

    /// What the config hash holds for `halfLife`: its milliseconds, 0 for none.
    public static func recorded(_ halfLife: Duration?) -> Int64 {
        halfLife.map { max(1, $0.milliseconds) } ?? 0
    }

    public var description: String {
        func setting(_ milliseconds: Int64) -> String {
            if milliseconds == 0 { return " unset" }
            for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where milliseconds % size == 0 {
                return "=\(milliseconds / size)\(unit)"
            }
            return "=\(milliseconds)ms"
        }
        return "RELOCATOR_HALF_LIFE: the counts in Redis are kept with RELOCATOR_HALF_LIFE\(setting(recorded)), and this process has it\(setting(wanted)): "
            + "every count would read as another (contents would move for it); keep RELOCATOR_HALF_LIFE\(setting(recorded)) on every process "
            + "(a change starts the counts afresh: docs/QUEUE.md)"
    }
}
