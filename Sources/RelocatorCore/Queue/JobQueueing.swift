/// The job queue as the rest of the house sees it: a narrow seam of domain operations over typed
/// jobs. `RedisJobQueue` (module JobQueue) is the real one, over the Lua scripts; `MemoryQueue`
/// (module RelocatorTesting) keeps the same life cycle in memory for tests of the rules, and the
/// contract suite (`QueueContractTests`) runs every life-cycle scenario on both.
///
/// A value of it is one session: one caller at a time, on one thread; every call may block (it is
/// never made from an event loop). `JobQueueDriver` makes one per thread that needs one.
public protocol JobQueueing: AnyObject {
    var shardCount: Int { get }

    /// Creates, coalesces, re-aims or drops contents' jobs, one result per request, in order.
    func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult]

    /// The next job for a worker's slot, taken and claimed: its delivery. Waits up to the request's
    /// `wait` when every queue is empty.
    func next(_ request: NextRequest) throws -> NextResult

    /// Records a delivery's progress; false when the job is no longer this delivery's (it must stop
    /// before publishing or removing anything).
    func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool

    /// Ends a delivery: moved, failed or deferred.
    func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion

    /// Ends several deliveries in one go (a worker's finisher acknowledges together the moves one
    /// directory fsync made durable): one result per delivery, in order, each as `complete` would
    /// end it alone — its completion, or the error that kept it from ending (that one only: the
    /// others of the batch are ended all the same).
    func complete(_ endings: [(delivery: Delivery, outcome: Outcome)]) -> [Result<Completion, any Error>]

    /// Up to `max` done jobs of one shard, moved into the committer's list; when there are none,
    /// waits up to `wait` for one (then the batch may be empty). `fresh`: only what arrived since
    /// its last call (a prefetch beside a batch in hand).
    func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch

    /// After the SQL transaction: the batch's jobs committed (or their follow-ups queued); `committer`
    /// nil: jobs committed straight from `done` (`/update_sentence`). `keep`: how long a committed
    /// job stays readable.
    func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult

    /// A worker's or committer's round: its heartbeat, and what the request asks besides (due jobs
    /// promoted, dead peers reaped) and needs to know (paused levels, the placement, what it holds).
    func maintain(_ request: MaintenanceRequest) throws -> MaintenanceReport

    /// The limits shared by every worker on a level: permits, room, bandwidth.
    func admit(_ request: AdmissionRequest) throws -> AdmissionAnswer

    /// Operators, the rebalancer, reconcile and the processes' starts and ends.
    func control(_ action: ControlAction) throws -> ControlResult

    /// Several actions in order, each as `control` would do it, in one round trip where the queue
    /// can (a rename's leases and new names, their release): each action's result.
    func controls(_ actions: [ControlAction]) throws -> [ControlResult]

    /// Closes what the session holds open.
    func close()
}

/// A session of the queue: its life cycle and its reads, on one connection.
public typealias JobQueueSession = JobQueueing & QueueReading

/// Makes a session per thread that needs one.
public protocol JobQueueDriver: Sendable {
    func session() -> any JobQueueSession
}

/// Done jobs taken by a committer from one shard: every id taken (what the commit releases) and
/// the jobs among them that are done and readable (what SQL records).
public struct DoneBatch: Sendable, Equatable {
    public var shard: Int
    public var ids: [String]
    public var jobs: [Job]

    public init(shard: Int, ids: [String], jobs: [Job]) {
        self.shard = shard
        self.ids = ids
        self.jobs = jobs
    }

    public var isEmpty: Bool { ids.isEmpty }
}

/// What submitting a count asks.
public struct SubmitRequest: Sendable, Equatable {
    public var cid: Int64
    public var count: Int64
    public var filename: String
    /// Where the caller read the file to be.
    public var dbLevel: String
    public var target: String
    /// When `dbLevel` was read (ms, on the queue's clock unless `sentAt` is given), or
    /// `SubmitRequest.freshRead`.
    public var readAt: Int64
    public var policy: CountPolicy
    /// When the caller sent this, on the clock `readAt` is on (the caller's own): the queue then
    /// takes only the read's age from the caller, and places it on its own clock, so that a clock
    /// stepped on either side cannot make an old read look newer than a move. Nil: `readAt` is on
    /// the queue's clock.
    public var sentAt: Int64?
    /// With `sentAt`: the queue's clock when `dbLevel` was read was at least this (ms), as the
    /// caller learnt from the queue's answers (`QueueClockEstimate`). The queue takes the earlier of
    /// this and the read placed by its age, so that a call long on its way (a process paused, a
    /// server stalled) cannot make the read look newer than a move committed meanwhile. Nil: none
    /// known.
    public var readBound: Int64?
    /// Who submits and the rule that chose `target`: the job's `queued_by` when this creates or
    /// re-aims it, its `next_queued_by` when it asks for a follow-up.
    public var queuedBy: QueuedBy?
    /// A plan's move (the rebalancer's), whose count was read from the content's score, not sent
    /// by anyone: it is not recorded as the content's last count (nor its score), and a read of
    /// another level than a later commit's is not overridden by that commit's job (the content
    /// is then planned again from where it is).
    public var fromPlan = false

    /// A level read from the database that stands whatever the queue holds. No caller of the
    /// application sends one (a process may pause between its read and its submission): reads go
    /// with their age (`sentAt`); this serves tests of the queue's rules.
    public static let freshRead: Int64 = -1

    public init(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, readAt: Int64, policy: CountPolicy = .none,
                sentAt: Int64? = nil, readBound: Int64? = nil, queuedBy: QueuedBy? = nil, fromPlan: Bool = false) {
        self.fromPlan = fromPlan
        self.sentAt = sentAt
        self.readBound = readBound
        self.cid = cid
        self.count = count
        self.filename = filename
        self.dbLevel = dbLevel
        self.target = target
        self.readAt = readAt
        self.policy = policy
        self.queuedBy = queuedBy
    }
}

/// What a submission did.
public enum SubmitOutcome: String, Sendable, CaseIterable {
    /// A new job was queued.
    case created
    /// The job already aimed at this target; only the count changed.
    case updated
    /// A waiting job got a new target (new gen, pushed on the new target's queue).
    case retargeted
    /// A job whose copy may already be at its target was sent back where it came from.
    case reversed
    /// A dead job whose copy may be at its target runs again to finish its move.
    case requeued
    /// A move is in flight (or a reaped delivery may still act); the new target follows after the commit.
    case followUp = "follow_up"
    /// The file is already on this level: nothing to do.
    case inPlace = "in_place"
    /// A waiting job was dropped: the new target is where the file already is.
    case dropped
    /// The content changed level after the caller read it: read it again and resubmit.
    case staleLevel = "stale_level"
}

public struct SubmitResult: Sendable, Equatable {
    public var outcome: SubmitOutcome
    /// The job after the submission; nil when there is none.
    public var job: Job?
    /// The queue's clock when it answered (ms), when the queue says.
    public var queueNow: Int64?

    public init(outcome: SubmitOutcome, job: Job?, queueNow: Int64? = nil) {
        self.outcome = outcome
        self.job = job
        self.queueNow = queueNow
    }
}

/// A round of a worker's or committer's maintenance.
public struct MaintenanceRequest: Sendable, Equatable {
    public var beat: Heartbeat
    public var ttl: Duration
    /// Retries and deferrals whose time has come go back to their queues.
    public var promoteDue: Bool
    /// Workers whose heartbeat has been missing for this long are reaped (nil: none).
    public var reapAfter: Duration?
    /// Report the ids this process holds in its processing lists.
    public var listHeld: Bool
    /// With `promoteDue`: the longest a retry and a deferral wait.
    public var horizons: ScheduleHorizons

    public init(beat: Heartbeat, ttl: Duration, promoteDue: Bool = false, reapAfter: Duration? = nil, listHeld: Bool = false,
                horizons: ScheduleHorizons = .none) {
        self.beat = beat
        self.ttl = ttl
        self.promoteDue = promoteDue
        self.reapAfter = reapAfter
        self.listHeld = listHeld
        self.horizons = horizons
    }
}

/// The longest a retry (its backoff's cap) and a deferral (the longest delay or residency window)
/// wait. A job scheduled further ahead of Redis' clock than that was scheduled before the clock
/// stepped back (Redis restarted with its clock behind): it is due now, not once the clock has
/// caught up. nil: no such bound is known, the job waits for its time.
public struct ScheduleHorizons: Sendable, Equatable {
    public var retry: Duration?
    public var deferral: Duration?

    public init(retry: Duration? = nil, deferral: Duration? = nil) {
        self.retry = retry
        self.deferral = deferral
    }

    public static let none = ScheduleHorizons()

    /// The kinds of scheduled set, as announcements name them.
    public enum Kind: String, Sendable {
        case retry, deferred
    }

    /// The announcement's field of `process` for a set of `kind` (`ShardKeys.horizons`).
    public static func field(_ kind: Kind, process: String) -> String { "\(kind.rawValue)|\(process)" }

    /// A horizon as the queue takes it: ms, never negative, at most about 35 years (so that sums
    /// with Redis' clock stay exact).
    public static func milliseconds(_ horizon: Duration) -> Int64 { min(max(0, horizon.milliseconds), Int64(1) << 40) }

    /// How long an announcement of `horizon` (ms) made at `now` is kept: as long as a job its
    /// process scheduled may still wait, and as long again (it may still schedule a retry in its
    /// grace period after its last announcement), and a minute.
    public static func announcementUntil(now: Int64, horizon: Int64) -> Int64 {
        now.saturatingAdd(horizon.saturatingMultiply(2)).saturatingAdd(60_000)
    }

    /// True when a job scheduled at `due` (ms) is due at `now` (ms) in a set whose waits last at
    /// most `horizon`.
    public static func isDue(_ due: Int64, now: Int64, horizon: Duration?) -> Bool {
        if due <= now { return true }
        guard let horizon else { return false }
        return due > now.saturatingAdd(max(0, horizon.milliseconds))
    }
}

public struct MaintenanceReport: Sendable, Equatable {
    public var paused: Set<String>
    /// The level table and policies the committer published, nil before any.
    public var placement: PlacementSnapshot?
    /// Why the published placement could not be read (the last one read stays in force).
    public var placementProblem: String?
    public var promoted: Int
    /// Jobs given back from workers found dead.
    public var reaped: Int
    public var held: [HeldJob]

    public init(paused: Set<String> = [], placement: PlacementSnapshot? = nil, promoted: Int = 0, reaped: Int = 0, held: [HeldJob] = []) {
        self.paused = paused
        self.placement = placement
        self.promoted = promoted
        self.reaped = reaped
        self.held = held
    }
}

/// The limits of a level shared by every worker slot (`holder`), with a time to live so a holder
/// that dies lets go by itself.
public enum AdmissionRequest: Sendable, Equatable {
    /// One of the level's `max_moves` permits.
    case permit(level: String, holder: String, most: Int, ttl: Duration)
    case releasePermit(level: String, holder: String)
    /// Room for a copy of `bytes` in a level with `room` bytes left below its high watermark,
    /// counting what the other holders reserved.
    case room(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration)
    case releaseRoom(level: String, holder: String)
    /// Bytes from the level's token bucket of `rate` bytes per second.
    case bandwidth(level: String, rate: Int64, bytes: Int64)
}

public enum AdmissionAnswer: Sendable, Equatable {
    case granted
    case refused
    /// Room refused: what the others hold.
    case roomHeld(others: Int64)
    /// Bandwidth: wait this long before asking again.
    case wait(Duration)
}

/// What operators, the rebalancer, reconcile and the processes themselves change.
public enum ControlAction: Sendable, Equatable {
    /// Before a process starts: the shard count agreed, and what an operator should know.
    case start
    case pause(level: String)
    case resume(level: String)
    /// Replays or purges dead jobs: those of `cids`, or all; `by` names who asks (`relocator dlq
    /// replay`…), for the jobs' `queued_by`.
    case dead(DeadAction, cids: [Int64]?, by: String = "an operator")
    case publishPlacement(PlacementSnapshot)
    /// The rebalancer's lock, taken or renewed by `holder`.
    case holdRebalancer(holder: String, ttl: Duration)
    /// A deferred job whose content can never fit goes to the dead letters.
    case doesNotFit(JobID, message: String)
    /// Everything a process holds goes back (`ids`: only those); `fence`: its deliveries may still act.
    case release(worker: String, ids: [HeldJob]?, fence: Bool)
    case unregister(worker: String)
    /// A reconcile run holds a content (no claim meanwhile) or lets it go.
    case lease(cid: Int64, token: String, ttl: Duration)
    case unlease(cid: Int64, token: String)
    /// Before a change of a content's level outside a move: a generation for it (`.count`), or
    /// `.count(-1)` while the content has a job in flight.
    case levelGeneration(cid: Int64)
    /// After it: a submission based on an older read of the level is told to read it again. With
    /// `filename`, after a change of the content's filename made while `holder` leased it (so no
    /// job of it was in flight, and none has been taken since): a job a count made meanwhile, not
    /// yet taken, takes that name — its count may have read the name from before. Only while
    /// `holder`'s lease still holds.
    case levelChanged(cid: Int64, filename: String? = nil, holder: String? = nil)
    /// A content removed from the store: the queue forgets its place among the residents of
    /// `levels`, when it last moved and its hit counter (its generation counter stays).
    case forgetContent(cid: Int64, levels: [String])
    /// Jobs missing from the list their status calls for; with `fix`, put back.
    case orphans(cids: [Int64], fix: Bool)
    /// Adds hits to a content's decaying counter.
    case hit(cid: Int64, hits: Double, halfLife: Duration)
    /// Throws unless the queue accepts writes now.
    case checkWritable
    /// A claimed job whose hash cannot be read goes to the dead letters (`undecodable_job`).
    case bury(HeldJob, worker: String, token: String, problem: String)
    /// Records levels as initialised (`LevelReadiness`); answers every level recorded so.
    case levelsSeen(adding: [String])
    /// Records the half-life the counts are kept with, if none is; throws `HalfLifeChange` when
    /// another one is.
    case agreeOnHalfLife(Duration?)
    /// A reconcile run asks other hosts' workers about a content's file: the inquiry `token`
    /// (created with the digest `key` of its secret) names `filename` for `cid`, for `ttl`.
    case inquire(token: String, key: String, cid: Int64, filename: String, ttl: Duration)
    /// What inquiry `token` asks about `cid`: `.names([key, filename])`, or `.names([])` when it
    /// asks nothing about it (or has expired).
    case inquiry(token: String, cid: Int64)
}

public enum ControlResult: Sendable, Equatable {
    case done
    case flag(Bool)
    case count(Int)
    case value(Double)
    case warnings([String])
    case dead([(id: String, outcome: DeadOutcome)])
    case orphans([Orphan])
    case names([String])

    public static func == (a: ControlResult, b: ControlResult) -> Bool {
        switch (a, b) {
        case (.done, .done): return true
        case let (.flag(x), .flag(y)): return x == y
        case let (.count(x), .count(y)): return x == y
        case let (.value(x), .value(y)): return x == y
        case let (.warnings(x), .warnings(y)): return x == y
        case let (.dead(x), .dead(y)): return x.map(\.id) == y.map(\.id) && x.map(\.outcome) == y.map(\.outcome)
        case let (.orphans(x), .orphans(y)): return x == y
        case let (.names(x), .names(y)): return x == y
        default: return false
        }
    }
}

/// A worker's or committer's heartbeat: what `status` and the dashboard show of it.
public struct Heartbeat: Sendable, Equatable {
    public enum Kind: String, Sendable { case worker, committer }

    public var id: String
    public var kind: Kind
    public var host: String?
    public var pid: Int?
    public var levels: [String]
    public var concurrency: Int?
    /// Jobs in hand.
    public var held: Int?
    public var startedAt: Int64?
    /// When it was sent (ms, Redis' clock), filled in by the queue.
    public var beatAt: Int64?
    public var disks: DiskReport?
    /// Each level's directory as this process sees it.
    public var directories: [String: String]
    /// Levels out of service for it.
    public var unavailable: [String]
    /// The port of its metrics server (nil: none).
    public var metricsPort: Int?
    /// Where it serves the files of its levels to other workers (`host:port`; nil: it serves none).
    public var transfer: String?
    /// Its transfer endpoint speaks TLS only.
    public var transferTLS: Bool

    public init(id: String, kind: Kind, host: String? = nil, pid: Int? = nil, levels: [String] = [], concurrency: Int? = nil, held: Int? = nil,
                startedAt: Int64? = nil, beatAt: Int64? = nil, disks: DiskReport? = nil, directories: [String: String] = [:],
                unavailable: [String] = [], metricsPort: Int? = nil, transfer: String? = nil, transferTLS: Bool = false) {
        self.id = id
        self.kind = kind
        self.host = host
        self.pid = pid
        self.levels = levels
        self.concurrency = concurrency
        self.held = held
        self.startedAt = startedAt
        self.beatAt = beatAt
        self.disks = disks
        self.directories = directories
        self.unavailable = unavailable
        self.metricsPort = metricsPort
        self.transfer = transfer
        self.transferTLS = transferTLS
    }

    /// The levels whose files it serves to other workers: those whose directory it holds and
    /// that are in service for it, when it advertises a transfer address (none otherwise).
    public var transferLevels: [String] {
        guard kind == .worker, transfer != nil else { return [] }
        return directories.keys.filter { !unavailable.contains($0) }.sorted()
    }
}

extension Heartbeat {
    /// How often a heartbeat with time to live `ttl` is renewed: every third of it, at most ten
    /// times a second.
    public static func renewalInterval(ttl: Duration) -> Duration {
        .milliseconds(max(100, ttl.milliseconds / 3))
    }

    /// The queue's clock as the live heartbeats tell it, in ms: the oldest beat, stamped by Redis'
    /// `TIME` at most a heartbeat's lease ago (nil without any). Counts stamped by that clock decay
    /// on it, not on this host's, which may be hours off. The oldest, not the newest: after a step
    /// back of Redis' clock, beats from before it are ahead until renewed, and would decay counts
    /// by the step; an old one only decays them a little less.
    public static func queueClock(_ beats: [Heartbeat]) -> Int64? {
        beats.compactMap(\.beatAt).min()
    }
}

