/// How one level is managed: a row of the `level_policy` table. Every setting is optional (NULL
/// in the table: not set). JSON keys are the column names: `{"high_water": 90, "low_water": 75}`.
public struct LevelPolicy: Equatable, Sendable, Codable {
    /// Disk usage (percent, 0–100) above which the level should shed contents.
    public var highWater: Int?
    /// Disk usage (percent, 0–100) to shed down to; not above `highWater`.
    public var lowWater: Int?
    /// Seconds a content stays on the level before it may be moved again.
    public var minResidency: Int64?
    /// Percent (0–100) a count must pass a threshold by before a move.
    public var hysteresis: Int?
    /// Most moves into the level at once, across all workers.
    public var maxMoves: Int?
    /// Bytes per second that copies into the level may write, across all workers.
    public var bandwidth: Int64?
    /// Order among levels competing for work (a plain integer; the rule using it decides its sense).
    public var priority: Int?

    public init(highWater: Int? = nil, lowWater: Int? = nil, minResidency: Int64? = nil, hysteresis: Int? = nil,
                maxMoves: Int? = nil, bandwidth: Int64? = nil, priority: Int? = nil) {
        self.highWater = highWater
        self.lowWater = lowWater
        self.minResidency = minResidency
        self.hysteresis = hysteresis
        self.maxMoves = maxMoves
        self.bandwidth = bandwidth
        self.priority = priority
    }

    enum CodingKeys: String, CodingKey {
        case highWater = "high_water"
        case lowWater = "low_water"
        case minResidency = "min_residency"
        case hysteresis
        case maxMoves = "max_moves"
        case bandwidth
        case priority
    }

    /// What is out of bounds, one line each (empty when the policy is sound).
    public func problems(level: String) -> [String] {
        var problems: [String] = []
        func percent(_ value: Int?, _ column: String) {
            if let value, !(0...100).contains(value) {
                problems.append("level '\(level)': \(column) \(value) is not a percentage from 0 to 100")
            }
        }
        func notNegative(_ value: Int64?, _ column: String) {
            if let value, value < 0 { problems.append("level '\(level)': \(column) \(value) is negative") }
        }
        percent(highWater, "high_water")
        percent(lowWater, "low_water")
        percent(hysteresis, "hysteresis")
        if let low = lowWater, let high = highWater, low > high {
            problems.append("level '\(level)': low_water \(low) is above high_water \(high)")
        }
        notNegative(minResidency, "min_residency")
        notNegative(maxMoves.map(Int64.init), "max_moves")
        notNegative(bandwidth, "bandwidth")
        return problems
    }

    /// What an edit does to one setting.
    public enum Change<Value: Sendable & Equatable>: Sendable, Equatable {
        /// Leave the setting as it is.
        case keep
        case set(Value)
        /// Back to not set (NULL).
        case clear

        func applied(to value: Value?) -> Value? {
            switch self {
            case .keep: return value
            case .set(let new): return new
            case .clear: return nil
            }
        }
    }

    /// Changes to some settings of a policy; the others stay as they are.
    public struct Edit: Sendable, Equatable {
        public var highWater: Change<Int>
        public var lowWater: Change<Int>
        public var minResidency: Change<Int64>
        public var hysteresis: Change<Int>
        public var maxMoves: Change<Int>
        public var bandwidth: Change<Int64>
        public var priority: Change<Int>

        public init(highWater: Change<Int> = .keep, lowWater: Change<Int> = .keep, minResidency: Change<Int64> = .keep,
                    hysteresis: Change<Int> = .keep, maxMoves: Change<Int> = .keep, bandwidth: Change<Int64> = .keep,
                    priority: Change<Int> = .keep) {
            self.highWater = highWater
            self.lowWater = lowWater
            self.minResidency = minResidency
            self.hysteresis = hysteresis
            self.maxMoves = maxMoves
            self.bandwidth = bandwidth
            self.priority = priority
        }

        /// The policy after this edit.
        public func applied(to policy: LevelPolicy) -> LevelPolicy {
            LevelPolicy(highWater: highWater.applied(to: policy.highWater), lowWater: lowWater.applied(to: policy.lowWater),
                        minResidency: minResidency.applied(to: policy.minResidency),
                        hysteresis: hysteresis.applied(to: policy.hysteresis), maxMoves: maxMoves.applied(to: policy.maxMoves),
                        bandwidth: bandwidth.applied(to: policy.bandwidth), priority: priority.applied(to: policy.priority))
        }
    }
}
