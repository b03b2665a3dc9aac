import FileMover
import Logging
import RelocatorCore

/// Submitting counts and hits, and `/update_sentence`'s commit: the only ways a job is created or
/// a done job is committed from outside the workers' pipeline.
extension App {
    public typealias Submitted = SubmitMachine.Submitted

    /// Forgets the cached contents when the queue's server is not the one it was (a restart or a
    /// failover may have lost what it knew of recent moves, which the cache relies on). At most
    /// once a second.
    func checkQueueIdentity() async {
        let due = queueIdentity.withLock { state -> Bool in
            if let checked = state.checked, ContinuousClock.now - checked < .seconds(1) { return false }
            state.checked = .now
            return true
        }
        guard due else { return }
        // Unreachable now: whatever answers next may be another server.
        let identity = await queue.identity() ?? "unreachable"
        let changed = queueIdentity.withLock { state -> Bool in
            defer { state.value = identity }
            return state.value != nil && state.value != identity
        }
        if changed {
            contents.clear()
            queueClocks.withLock { $0.removeAll() }
            logger.notice("Redis restarted or failed over: the content cache is emptied")
        }
    }

    /// A new view count for a content: the level it falls in, and a job unless it is already there.
    /// `submitter` says who sent it (kept in the job with the rule that chose its level).
    public func submit(cid: Int64, count: Int64, from submitter: Submitter = .other("a caller of the application")) async throws -> Submitted {
        await checkQueueIdentity()
        guard cid > 0 else { throw AppError.badRequest("cid must be a positive whole number, got \(cid)") }
        guard CountBound.range.contains(count) else {
            throw AppError.badRequest(CountBound.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count)))
        }
        let placement = try await placement()
        // A read's age goes to the queue as `sentAt − readAt`: both on the monotonic clock, which
        // no step of the wall clock moves (one stepped back would make a read look younger).
        var machine = SubmitMachine(cid: cid, count: count, placement: placement, policy: countPolicy(placement), now: monotonic(),
                                    submitter: submitter)
        let shard = KeySchema.shardIndex(of: cid, shards: queue.shardCount)
        // The content's cache entry as this submission knows it: the one found here, or the one
        // its own read stored (its verdicts on the name hold for that read whatever the cache holds
        // by then; a verdict another request adds meanwhile is only missed, and checked again).
        var entry = contents.entry(cid)
        var action = machine.start(cached: entry?.content, readAt: entry?.readAt ?? SubmitRequest.freshRead, readBound: entry?.readBound)
        // The filename checked last in this submission (a content read again may name another).
        var checked: String?
        while true {
            switch action {
            case .readContent:
                let readAt = monotonic()
                let readBound = queueClocks.withLock { $0[shard]?.lowerBound(at: monotonic()) }
                // Submissions that miss the cache together share one statement (`ContentReads`);
                // the name read is looked up on its level's directory by the submission below, on
                // that level's queue of looks — never while a session or a batch waits for it.
                let found = try await contentReads.read(cid) { [self] cids in
                    try await store.withStore { [self] in try readContents(cids, from: $0) }
                }
                if let found {
                    let read = ContentCache.Entry(content: found, readAt: readAt, readBound: readBound)
                    contents.store(read)
                    entry = read
                } else {
                    entry = nil
                }
                action = machine.contentRead(found, readAt: readAt, readBound: readBound)
            case .pauseThenReadContent:
                // The content changed just before it was read: a read now would be judged stale again.
                try await Task.sleep(for: .milliseconds(SubmitMachine.staleReadPause))
                action = .readContent
            case .submit(let request, let raise):
                // The filename, and its path on the level's directory, are checked once per content
                // read (the cache keeps the verdicts): a later count of a cached content does not
                // look at the disk (the worker resolves the path again before it moves anything).
                if checked != request.filename {
                    let read = entry.flatMap { FilenameKey.same($0.content.filename, request.filename) ? $0 : nil }
                    let filename = try checkedFilename(cid: cid, request.filename, read: read)
                    // (No entry of this read: not checked on any level.)
                    if read?.pathCheckedOn != request.dbLevel {
                        if try await checkPath(filename, on: request.dbLevel, cid: cid), let read {
                            contents.markPathChecked(cid, filename: request.filename, readAt: read.readAt, on: request.dbLevel)
                            entry?.pathCheckedOn = request.dbLevel
                        }
                    }
                    checked = request.filename
                }
                if let raise { try await raiseMaxCounts(raise.level, to: raise.count, cid: cid) }
                var sent = request
                // The read's age is measured up to the moment it is sent, after the checks above.
                if sent.sentAt != nil { sent.sentAt = monotonic() }
                let result = try await queue.submit(sent)
                if let queueNow = result.queueNow {
                    let received = monotonic()
                    queueClocks.withLock { $0[shard, default: QueueClockEstimate()].observe(queueNow: queueNow, receivedAt: received) }
                }
                logger.debug("submission", metadata: [
                    "job.cid": "\(cid)", "job.db_level": "\(sent.dbLevel)", "job.target": "\(sent.target)",
                    "read_age_ms": "\(sent.sentAt.map { String($0 - sent.readAt) } ?? "fresh")", "job.outcome": "\(result.outcome.rawValue)",
                    "job.gen": "\(result.job.map { String($0.gen) } ?? "-")", "job.status": "\(result.job?.status.rawValue ?? "-")",
                ])
                action = machine.submitted(result)
            case .finish(let submitted):
                logger.debug("submitted", metadata: ["job.cid": "\(cid)", "job.target": "\(submitted.target)",
                                                     "job.outcome": "\(submitted.result.outcome.rawValue)"])
                return submitted
            case .fail(.unknownContent(let cid)):
                throw AppError.unknownContent(cid)
            case .fail(.noLevel(let count)):
                throw AppError.noLevel("no level holds the count \(count); check the level table")
            case .fail(.unsettled(let cid)):
                throw AppError.unavailable("the level of cid \(cid) kept changing while its count was submitted; try again")
            }
        }
    }

    /// Contents as the store has them now (those of `cids` that exist). Blocking: runs inside the
    /// store's call, and looks at no disk there (a disk that does not answer would hold the session).
    func readContents(_ cids: [Int64], from store: any ContentStoring) throws -> [Int64: Content] {
        // One cid alone keeps the statement of a single row.
        cids.count == 1 ? try store.content(cid: cids[0]).map { [$0.cid: $0] } ?? [:] : try store.contents(cids: cids)
    }

    /// The checked filename of a content (`read`: its cache entry of the read that named it, which
    /// keeps the verdict).
    private func checkedFilename(cid: Int64, _ name: String, read: ContentCache.Entry?) throws -> Filename {
        let verdict: Result<Filename, any Error>
        if let read, FilenameKey.same(read.content.filename, name) {
            verdict = read.filename
        } else {
            verdict = Result { try Filename(name) }
        }
        switch verdict {
        case .success(let checked): return checked
        case .failure(let invalid as Filename.Invalid):
            throw AppError.invalidFilename("the filename of cid \(cid) cannot be moved safely: \(invalid.reason)")
        case .failure(let error): throw error
        }
    }

    /// The original rule said aloud (`relocator enqueue`): when `count` is above every level's
    /// range, the top level's `max_counts` is raised to it now, and what changed is returned (nil
    /// when nothing did), so that the caller can report it before submitting.
    public func raiseTopLevel(for count: Int64) async throws -> MaxCountsRaise? {
        guard let choice = try await levelTable().choose(count: count), let raised = choice.raiseMaxCounts else { return nil }
        let result = try await store.withStore { try $0.raiseMaxCounts(level: choice.level, to: raised) }
        levels.raise(level: choice.level, to: raised)
        return result.changed ? result : nil
    }

    /// The original rule: a count above the top level's `max_counts` raises it.
    private func raiseMaxCounts(_ level: String, to count: Int64, cid: Int64?) async throws {
        let result = try await store.withStore { try $0.raiseMaxCounts(level: level, to: count) }
        levels.raise(level: level, to: count)
        if result.changed {
            var metadata: Logger.Metadata = [
                "level": "\(level)", "level.previous_max_counts": "\(result.previous.map(String.init) ?? "none")", "level.max_counts": "\(count)",
            ]
            if let cid { metadata["job.cid"] = "\(cid)" }
            logger.notice("raised max_counts", metadata: metadata)
        }
    }

    /// Hits for a content (`POST /v1/contents/{cid}/hits`): its counter decays by half every
    /// half-life; its value now drives placement as a posted count does.
    public func hit(cid: Int64, hits: Int64, from submitter: Submitter = .hitsRoute) async throws -> (value: Double, submitted: Submitted) {
        guard let halfLife else {
            throw AppError.unavailable("hit counting needs RELOCATOR_HALF_LIFE (e.g. 24h) on the API")
        }
        guard hits >= 0 else { throw AppError.badRequest(CountBound.rangeMessage("n", minimum: 0, got: String(hits))) }
        if contents.entry(cid) == nil {
            guard try await store.withStore({ try $0.content(cid: cid) }) != nil else { throw AppError.unknownContent(cid) }
        }
        let counter = try await queue.withSession(replicated: true) { session -> Double in
            guard case .value(let value) = try session.control(.hit(cid: cid, hits: Double(hits), halfLife: halfLife)) else { return 0 }
            return value
        }
        // Within the range of a count whatever the queue held (hit.lua keeps it there too).
        let value = counter.isNaN ? 0 : min(max(counter, 0), Double(CountBound.max))
        return (value, try await submit(cid: cid, count: CountBound.clamped(value), from: submitter))
    }

    /// Many counts at once (`relocator enqueue --file`): one store query per 1,000 contents and
    /// one round trip per 1,000 submissions. Returns how many of each outcome; a cid that is
    /// unknown, has an unsafe filename or a count no level holds is reported and skipped. Each read
    /// goes to the queue with its age, as a count's does: a content whose level or name changed
    /// after the read is read again (after `SubmitMachine.staleReadPause`), twice at most, then
    /// reported and skipped.
    public func submitMany(_ counts: [(cid: Int64, count: Int64)], from submitter: Submitter = .enqueueCommand) async throws
        -> (outcomes: [String: Int], skipped: [String]) {
        let placement = try await placement()
        let policy = countPolicy(placement)
        var skipped: [String] = []
        var outcomes: [String: Int] = [:]
        var pending = counts
        for round in 1...3 {
            if round > 1 { try await Task.sleep(for: .milliseconds(SubmitMachine.staleReadPause)) }
            let readAt = monotonic()
            let cids = pending.map(\.cid)
            let found = try await store.withStore { try $0.contents(cids: cids) }
            var requests: [SubmitRequest] = []
            var raises: [String: Int64] = [:]
            for (cid, count) in pending {
                guard let content = found[cid] else { skipped.append("cid \(cid): no such content"); continue }
                do {
                    _ = try Filename(content.filename)
                } catch {
                    skipped.append("cid \(cid): unsafe filename (\(error))")
                    continue
                }
                guard CountBound.range.contains(count) else {
                    skipped.append("cid \(cid): \(CountBound.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count)))")
                    continue
                }
                guard let choice = placement.target(count: count, current: content.level) else {
                    skipped.append("cid \(cid): no level holds \(count)")
                    continue
                }
                if let raised = choice.raiseMaxCounts { raises[choice.level] = max(raises[choice.level] ?? 0, raised) }
                requests.append(SubmitRequest(cid: cid, count: count, filename: content.filename, dbLevel: content.level, target: choice.level,
                                              readAt: SubmitMachine.sentReadAt(readAt), policy: policy, sentAt: readAt,
                                              queuedBy: QueuedBy.count(count, from: submitter, decision: choice, placement: placement)))
            }
            for (level, count) in raises { try await raiseMaxCounts(level, to: count, cid: nil) }
            var stale: [(cid: Int64, count: Int64)] = []
            for chunk in requests.chunks(of: 1000) {
                // The reads' age is measured up to the moment they are sent, once the session is
                // had (waiting for a connection is not time on the way).
                let batch = Array(chunk)
                let results = try await queue.withSession(replicated: true) { [monotonic] session in
                    let sentAt = monotonic()
                    return try session.submit(batch.map { request in
                        var sent = request
                        sent.sentAt = sentAt
                        return sent
                    }).map(\.outcome)
                }
                for (request, outcome) in zip(batch, results) {
                    if outcome == .staleLevel {
                        stale.append((request.cid, request.count))
                    } else {
                        outcomes[outcome.rawValue, default: 0] += 1
                    }
                }
            }
            pending = stale
            if pending.isEmpty { break }
        }
        for (cid, _) in pending { skipped.append("cid \(cid): its level or filename kept changing while it was submitted; submit it again") }
        return (outcomes, skipped)
    }

    /// The original `/update_sentence`: true when the job is committed (a done job is committed
    /// now, idempotently — the committer may write the same row again without harm). A job in any
    /// other state, a dead one too, is not.
    public func commitIfDone(cid: Int64) async throws -> Bool {
        guard let job = try await queue.withSession({ try $0.jobs(cids: [cid])[cid] }) else { return false }
        switch job.status {
        case .committed: return true
        case .done:
            let halfLife = self.halfLife
            let (levels, policy) = try await store.withStore { try Commit.record([job], in: $0, halfLife: halfLife) }
            let keep = jobTTL, shards = queue.shardCount
            _ = try await queue.withSession(replicated: true) { session in
                let batch = DoneBatch(shard: KeySchema.shardIndex(of: cid, shards: shards), ids: [job.id], jobs: [job])
                return try session.commit(batch, committer: nil, levels: levels, policy: policy, keep: keep).followUps
            }
            return true
        case .queued, .moving, .retrying, .deferred, .dead: return false
        }
    }
}
