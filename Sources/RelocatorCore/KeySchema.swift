/// Every Redis key Relocator uses, and the one place their names are spelled.
///
/// Keys of a content's job live in that content's **shard**; keys that are not per content (the
/// worker registry, heartbeats, pause flags, level reports, the shard count) live in the **control**
/// slot. Every key of one shard shares one Redis Cluster hash tag, so every Lua script, which
/// touches keys of exactly one shard or of the control slot, stays legal on a cluster.
///
/// With one shard (the default) the shard's keys and the control keys share the prefix itself,
/// `{relocator}`: `{relocator}job:7`, `{relocator}queue:gold`, `{relocator}workers` — the layout
/// of every earlier version. With N > 1 shards, shard k replaces the prefix's hash tag `{t}` with
/// `{t:k}` (`{relocator:3}job:7`), and the control keys keep the prefix as given.
public struct KeySchema: Equatable, Sendable {
    public let prefix: String
    public let shardCount: Int

    public static let defaultPrefix = "{relocator}"

    public struct Invalid: Error, CustomStringConvertible, Equatable, Sendable {
        public let description: String
    }

    public init(prefix: String = KeySchema.defaultPrefix, shards: Int = 1) throws {
        guard shards >= 1, shards <= 1024 else { throw Invalid(description: "the shard count must be between 1 and 1024, got \(shards)") }
        if shards > 1 {
            guard Self.hashTag(prefix) != nil else {
                throw Invalid(description: "with more than one shard the prefix must hold a hash tag such as {relocator} (got '\(prefix)')")
            }
        }
        self.prefix = prefix
        self.shardCount = shards
    }

    /// The prefix's hash tag: the range between the first `{` and the next `}`, when not empty.
    static func hashTag(_ prefix: String) -> Range<String.Index>? {
        guard let open = prefix.firstIndex(of: "{"),
              let close = prefix[prefix.index(after: open)...].firstIndex(of: "}"),
              prefix.index(after: open) < close else { return nil }
        return prefix.index(after: open)..<close
    }

    /// The shard a content's job lives in: a stable function of its cid.
    public func shardIndex(of cid: Int64) -> Int { Self.shardIndex(of: cid, shards: shardCount) }

    /// The shard of a content among `shards`.
    public static func shardIndex(of cid: Int64, shards: Int) -> Int {
        Int(UInt64(bitPattern: cid) % UInt64(max(1, shards)))
    }

    public func shard(_ index: Int) -> ShardKeys {
        precondition(index >= 0 && index < shardCount, "shard \(index) out of 0..<\(shardCount)")
        if shardCount == 1 { return ShardKeys(index: 0, prefix: prefix) }
        let tag = Self.hashTag(prefix)!
        var tagged = prefix
        tagged.replaceSubrange(tag, with: "\(prefix[tag]):\(index)")
        return ShardKeys(index: index, prefix: tagged)
    }

    public func shard(of cid: Int64) -> ShardKeys { shard(shardIndex(of: cid)) }

    public var shards: [ShardKeys] { (0..<shardCount).map(shard) }

    public var control: ControlKeys { ControlKeys(prefix: prefix) }
}

/// The keys of one shard: jobs and the lists they move through.
public struct ShardKeys: Equatable, Sendable, Hashable {
    public let index: Int
    /// Holds the shard's hash tag.
    public let prefix: String

    /// A content's job hash (fields: `JobField`).
    public func job(_ cid: Int64) -> String { "\(prefix)job:\(cid)" }
    /// Job ids waiting to be moved into a level.
    public func queue(_ level: String) -> String { "\(prefix)queue:\(level)" }
    /// What one worker has taken (the BRPOPLPUSH destination).
    public func processing(_ worker: String) -> String { "\(prefix)processing:\(worker)" }
    /// What one committer has taken.
    public func committing(_ committer: String) -> String { "\(prefix)committing:\(committer)" }
    /// Jobs waiting for a retry, scored by due time (ms).
    public var retry: String { "\(prefix)retry" }
    /// Jobs that wait for room or for a residency window to pass, scored by when to look again (ms).
    public var deferred: String { "\(prefix)deferred" }
    /// The longest wait of `retry` and of `deferred` that each process promoting due jobs announced
    /// (`due.lua`; field `ScheduleHorizons.field`, value `<until ms>:<wait ms>`): a job scheduled
    /// further ahead than the longest is one written before Redis' clock stepped back.
    public var horizons: String { "\(prefix)horizons" }
    /// Jobs that failed for good.
    public var dead: String { "\(prefix)dead" }
    /// Verified moves waiting for the committer.
    public var done: String { "\(prefix)done" }
    /// The last generation given to each content's job: a new generation is always higher, whatever
    /// Redis' clock does and however long ago the content's last job expired, so the committer's
    /// "a later move wins" holds.
    public var gens: String { "\(prefix)gens" }
    /// A reconcile run holding a content: no worker claims its job meanwhile.
    public func lease(_ cid: Int64) -> String { "\(prefix)lease:\(cid)" }
    /// Counters of what happened in this shard (`StatField`).
    public var stats: String { "\(prefix)stats" }
    /// Each resident content of a level with its recent count as score (a decayed-count score when
    /// a half-life is set): "the coldest on gold" is one range query.
    public func residents(_ level: String) -> String { "\(prefix)residents:\(level)" }
    /// When each content last moved (ms), for the minimum residency.
    public var movedAt: String { "\(prefix)moved-at" }
    /// Each content's decaying hit counter, `<value>:<ms>`.
    public var hits: String { "\(prefix)hits" }
    /// This shard's copy of the paused levels (`ControlKeys.paused`), which its take and claim
    /// scripts read: a pause holds in every shard from the moment it is written. With one shard it
    /// is the control key itself.
    public var paused: String { "\(prefix)paused" }

    /// Moves acknowledged in each of the last 120 minutes, with their bytes (`ack.lua`), and jobs
    /// committed (`committed.lua`): hashes of at most 120 fields, `minute mod 120` →
    /// `<minute> <count> <bytes>` (`ThroughputRing`), which the dashboard's chart reads.
    public var movedPerMinute: String { "\(prefix)per-minute:moved" }
    public var committedPerMinute: String { "\(prefix)per-minute:committed" }

    /// Every key name pattern of the shard, for a `SCAN` of one kind.
    public var jobPattern: String { "\(prefix)job:*" }
}

/// The keys that are not per content.
public struct ControlKeys: Equatable, Sendable {
    public let prefix: String

    /// Every known worker and committer id.
    public var workers: String { "\(prefix)workers" }
    /// A worker's heartbeat: a hash (`WorkerField`) that expires unless renewed.
    public func heartbeat(_ worker: String) -> String { "\(prefix)worker:\(worker)" }
    /// When the reaper first saw a worker's heartbeat missing.
    public func suspect(_ worker: String) -> String { "\(prefix)suspect:\(worker)" }
    /// Levels whose queues workers do not take from.
    public var paused: String { "\(prefix)paused" }
    /// The levels a worker or reconcile found initialised (with `.relocator/`) or initialised: such
    /// a level whose directory lacks `.relocator/` later is a bare mountpoint, not a new level.
    public var levelsSeen: String { "\(prefix)levels-seen" }
    /// A reconcile run's questions to other hosts' workers (`HostInquiry`): a hash of the digest of
    /// its secret (`HostInquiry.keyField`) and, per content id asked about, the filename asked
    /// after; it expires with the run.
    public func inquiry(_ token: String) -> String { "\(prefix)inquiry:\(token)" }
    /// Settings every process must agree on (the shard count).
    public var config: String { "\(prefix)config" }
    /// The level table and the level policies, as the committer last read them from SQL (JSON),
    /// for the workers, which have no database.
    public var placement: String { "\(prefix)placement" }
    /// Moves in flight into a level, one member per worker slot, scored by when it lapses (ms).
    public func permits(_ level: String) -> String { "\(prefix)permits:\(level)" }
    /// Bytes of copies into a level admitted and not yet finished, one field per worker slot
    /// (`room.lua`).
    public func reserved(_ level: String) -> String { "\(prefix)reserved:\(level)" }
    /// The token bucket of bytes written into a level.
    public func bandwidth(_ level: String) -> String { "\(prefix)bandwidth:\(level)" }
    /// Held by the one rebalancer at work.
    public var rebalancer: String { "\(prefix)rebalancer" }
}
