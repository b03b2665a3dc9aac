/// Depths, ages and totals of the queue, for `status`, `/v1/queues`, the metrics and the dashboard.
public struct QueueStats: Sendable, Equatable {
    public struct Level: Sendable, Equatable {
        public var name: String
        public var depth = 0
        /// How long the oldest waiting job has waited (since it was queued or re-aimed).
        public var oldestAgeMilliseconds: Int64?
        public var paused = false

        public init(level name: String, depth: Int = 0, oldestAgeMilliseconds: Int64? = nil, paused: Bool = false) {
            self.name = name
            self.depth = depth
            self.oldestAgeMilliseconds = oldestAgeMilliseconds
            self.paused = paused
        }
    }

    public struct Worker: Sendable, Equatable {
        public var id: String
        /// False when its heartbeat expired (the reaper will give its jobs back).
        public var alive: Bool
        public var info: [WorkerField: String]
        /// Jobs in its processing or committing lists.
        public var held: Int

        public init(worker id: String, alive: Bool, info: [WorkerField: String], held: Int) {
            self.id = id
            self.alive = alive
            self.info = info
            self.held = held
        }
    }

    public var levels: [Level]
    public var processing = 0
    public var committing = 0
    public var retry = 0
    public var deferred = 0
    public var dead = 0
    public var done = 0
    public var totals: [StatField: Int64] = [:]
    public var workers: [Worker] = []
    /// Redis' clock as these were read, in ms (nil: not known). It stamped the heartbeats and the
    /// jobs, so their ages are measured on it, not on the reading host's clock, which may be off.
    public var clockMilliseconds: Int64?

    public init(levels: [Level]) {
        self.levels = levels
    }

    /// Jobs somewhere between submission and commit.
    public var inFlight: Int { levels.reduce(0) { $0 + $1.depth } + processing + committing + retry + deferred + done }
}
