/// How many jobs each state holds, by target level and shard: what the API's `/metrics` shows as
/// `relocator_queue_depth`, `relocator_processing_jobs`, `relocator_dead_jobs`… with `level` and
/// `shard` labels.
public struct JobsByLevel: Sendable, Equatable {
    /// A state as the metrics name it: where the job's id is.
    public enum State: String, Sendable, CaseIterable {
        /// In `queue:<level>`.
        case queued
        /// In a worker's `processing:<worker>` list.
        case processing
        case retry, deferred, dead, done
        /// In a committer's `committing:<committer>` list.
        case committing
    }

    public struct Key: Hashable, Sendable {
        public var state: State
        /// The job's target level; `unknown` for an id whose job hash is gone.
        public var level: String
        public var shard: Int

        public init(_ state: State, _ level: String, _ shard: Int) {
            self.state = state
            self.level = level
            self.shard = shard
        }
    }

    /// The level label of an id whose job hash is gone (expired, or purged meanwhile).
    public static let unknownLevel = "unknown"

    public var counts: [Key: Int] = [:]
    /// How long the oldest job waiting in each level's queue of each shard has waited (ms).
    public var oldest: [Key: Int64] = [:]

    public init() {}

    public subscript(_ state: State, _ level: String, _ shard: Int) -> Int { counts[Key(state, level, shard)] ?? 0 }
}

