/// The cross-host move protocol over every interleaving: several deliveries of one content's job,
/// each a puller on the target level's host (`Worker.pull`, `proveFound`, `removeSource`,
/// `pullAndEnd`), the removal requests they send, each served by the source host's endpoint as
/// its own process (`TransferEndpoint.remove`, `LevelRoot.removeProven`), and what the rest of the
/// system may do between any two steps: the reaper giving the job back (a paused process looks
/// dead), a count sending the file back where it came from, a delivery killed, the source's worker
/// killed while it serves a removal, the answer of a removal lost, the file written to (a new
/// version), the committer, a deferred or retried job coming due. A depth-first search that skips
/// states already visited, as `Tests/FileMoverTests/Explorer.swift` does for the local mover.
///
/// Each step is one step of the code that reads or changes what another process can see (a file
/// on either host, a lock, the job in Redis); purely local work (hashing the chunks in flight,
/// reading the copy back) belongs to the step that follows it. Room, permits and bandwidth are
/// left out: they only make a pull wait. Every file has two chunks; a write either rewrites the
/// second chunk (the prefix stays) or both.
///
/// After every step the content's current version (the last one written) must be whole under its
/// name on some host: an older copy is no substitute. At the end — nothing left to do — the job is
/// committed or dropped, with exactly one copy, of the current version, on the level SQL records;
/// or — only when the file was written to and a count turned the job around (`reverse`) — dead as
/// `destination_conflict` (`proveFound` found the two copies different and leaves both) or
/// `source_missing` (the old target never held a copy: the turned job finds no source), with the
/// current version on SQL's level. The local mover dead-letters the same case (`verifyPublished`).
///
/// What writers may do: they write the file where SQL says it is, when it is there, without the
/// content's lock. One window is not covered and is not explored: between `removeProven`'s last
/// check (`requireUnchanged`) and its `unlink` a few system calls apart, a write is not seen.
///
/// A file's bytes here are a function of its version (every write makes a new one), so the hash
/// `removeProven` takes — made at the removal, or made as the endpoint served the file whole, for
/// the version still there (`ServedChecksum`) — is one step: the file's chunks at that step. A
/// write that leaves the version as it was (through a shared mapping) is not modelled: the served
/// hash misses such writes over the whole pull, as a local move does (docs/CROSSHOST.md).
struct PullExplorer {
    struct Bounds {
        /// Deliveries that may be reaped while they still act, or killed.
        var faulty = 2
        /// Clean deliveries afterwards, to finish the job.
        var clean = 4
        var reaps = 1
        var crashes = 1
        /// Kills of the source's worker while it serves a removal.
        var endpointCrashes = 0
        /// Answers of removals lost on their way.
        var lostAnswers = 1
        /// Counts back to the level the file comes from.
        var counts = 1
        /// Writes to the file.
        var writes = 0
        /// Whether a write may keep the first chunk (an append) and whether it may change it.
        var appends = true
        var rewrites = true
        /// Nil: every interleaving.
        var preemptions: Int?
    }

    /// Changes to the code, each of which the search must find (the explorer's own tests).
    enum Mutant {
        /// `removeSource` withdraws the published copy on any refusal, not only `version_changed`.
        case withdrawOnAnyRefusal
        /// `remove` does not compare the source's version with the one the copy was made of.
        case noVersionCheck
        /// A resumed pull keeps the verified prefix without comparing it with the source's (`HEAD`).
        case trustKeptPrefix
    }

    struct Report {
        var states = 0
        var transitions = 0
        /// Complete executions from the start to an end (paths through the graph of states).
        var interleavings = 0.0
        var ends = 0
        /// Ends where a reversed job found its two copies different after a write (see above).
        var conflictEnds = 0
        var violations: [String] = []
    }

    let bounds: Bounds
    let mutant: Mutant?
    private var paths: [PullState: Double] = [:]
    private(set) var report = Report()

    init(bounds: Bounds, mutant: Mutant? = nil) {
        self.bounds = bounds
        self.mutant = mutant
    }

    static func start(bounds: Bounds) -> PullState {
        PullState(reaps: bounds.reaps, crashes: bounds.crashes, endpointCrashes: bounds.endpointCrashes, lostAnswers: bounds.lostAnswers,
                  counts: bounds.counts, writes: bounds.writes, preemptions: bounds.preemptions ?? Int.max)
    }

    mutating func run(from start: PullState) -> Report {
        var trail: [String] = []
        report.interleavings = explore(start, trail: &trail)
        report.states = paths.count
        return report
    }

    /// The number of complete executions from `state`.
    private mutating func explore(_ state: PullState, trail: inout [String]) -> Double {
        if let known = paths[state] { return known }
        // A mutant's search stops at its first finding.
        if mutant != nil, !report.violations.isEmpty { return 0 }
        let next = successors(state)
        var total = 0.0
        if next.isEmpty {
            report.ends += 1
            switch endProblem(state) {
            case .some(let problem): violation(problem, trail, state)
            case .none: if state.job.status == .dead { report.conflictEnds += 1 }
            }
            total = 1
        }
        for (label, successor) in next {
            report.transitions += 1
            trail.append(label)
            if successor.currentCopies.isEmpty { violation("no complete copy of the current version is left", trail, successor) }
            total += explore(successor, trail: &trail)
            trail.removeLast()
        }
        paths[state] = total
        return total
    }

    private mutating func violation(_ what: String, _ trail: [String], _ state: PullState) {
        guard report.violations.count < 5 else { return }
        let files = state.finals.indices.map { "L\($0)=\(state.finals[$0].map { "\($0.chunks)" } ?? "none")" }
        report.violations.append("\(what) after: \(trail.joined(separator: ", ")); \(files.joined(separator: " ")), current \(state.current), SQL L\(state.sqlLevel), job \(state.job.status)")
    }

    private func endProblem(_ state: PullState) -> String? {
        if state.deliveries.contains(where: \.alive) { return "a delivery never ended" }
        if state.removals.contains(where: \.active) { return "a removal never ended" }
        if !state.locks.isEmpty { return "a lock is still held" }
        switch state.job.status {
        case .committed, .gone:
            if state.copies != [state.sqlLevel] { return "copies on \(state.copies), SQL says L\(state.sqlLevel)" }
            if state.currentCopies != [state.sqlLevel] { return "the copy on L\(state.sqlLevel) is not the current version" }
            return nil
        case .dead:
            guard state.wrote, state.job.turned, state.job.deadReason == .destinationConflict || state.job.deadReason == .sourceMissing else {
                return "the job ended dead (\(state.job.deadReason.map { "\($0)" } ?? "?"))"
            }
            if !state.currentCopies.contains(state.sqlLevel) { return "dead, and SQL's level does not hold the current version" }
            return nil
        default:
            return "the job ended \(state.job.status)"
        }
    }

    // MARK: - Transitions

    private func successors(_ state: PullState) -> [(String, PullState)] {
        var next: [(String, PullState)] = []
        for index in state.deliveries.indices {
            if let moved = step(state, index) { next.append(moved) }
            if state.deliveries[index].faulty, state.deliveries[index].alive, state.crashes > 0 {
                var crashed = state
                crashed.crashes -= 1
                crashed.deliveries[index].step = .crashed
                crashed.locks = crashed.locks.filter { $0.value != .delivery(index) }
                next.append(("kill D\(index)", crashed))
            }
        }
        for index in state.removals.indices {
            next += serve(state, index)
            if state.removals[index].active, state.endpointCrashes > 0 {
                var crashed = state
                crashed.endpointCrashes -= 1
                crashed.removals[index].step = .answered(.unreachable)
                crashed.locks = crashed.locks.filter { $0.value != .endpoint(index) }
                next.append(("kill E\(index)'s worker", crashed))
            }
        }
        let job = state.job
        if job.status == .moving, let holder = job.holder {
            // The reaper: always for a killed holder; for one that may only be paused, within the budget.
            let killed = !state.deliveries[holder].alive
            if killed || (state.deliveries[holder].faulty && state.reaps > 0) {
                var reaped = state
                if !killed { reaped.reaps -= 1 }
                // giveback.lua with the fence.
                reaped.job.status = .queued
                reaped.job.fence = job.token
                reaped.job.holder = nil
                next.append(("reap D\(holder)", reaped))
            }
        }
        if job.status == .queued, claimAllowed(state) { next.append(claim(state)) }
        if job.status == .deferred || job.status == .retrying {
            var due = state
            due.job.status = .queued
            next.append(("due", due))
        }
        if state.counts > 0, let counted = countBack(state) { next.append(counted) }
        if job.status == .done { next.append(commit(state)) }
        if state.writes > 0 { next += write(state) }
        return next
    }

    /// Faulty deliveries whenever the job waits; clean ones only once no lock is held and no
    /// removal is served.
    private func claimAllowed(_ state: PullState) -> Bool {
        if state.deliveries.count < bounds.faulty { return true }
        return state.deliveries.count < bounds.faulty + bounds.clean && state.locks.isEmpty && !state.removals.contains(where: \.active)
    }

    /// claim.lua: a new token; the delivery reads the job as it is now.
    private func claim(_ state: PullState) -> (String, PullState) {
        var next = state
        next.job.token += 1
        next.job.status = .moving
        next.job.holder = state.deliveries.count
        let job = next.job
        next.deliveries.append(PullState.Delivery(token: job.token, gen: job.gen, source: job.source, target: job.target, stage: job.stage,
                                                  checksum: job.checksum, sourceVersion: job.sourceVersion, verified: job.verified,
                                                  faulty: state.deliveries.count < bounds.faulty))
        return ("claim D\(state.deliveries.count) (L\(job.source)→L\(job.target))", next)
    }

    /// The application writes the file where SQL says it is (not in `removeProven`'s window).
    private func write(_ state: PullState) -> [(String, PullState)] {
        let level = state.sqlLevel
        guard let file = state.finals[level] else { return [] }
        if state.removals.contains(where: { $0.level == level && $0.step == .unlink }) { return [] }
        var next: [(String, PullState)] = []
        var kinds: [(String, [Int])] = []
        if bounds.appends { kinds.append(("appends to", [file.chunks[0], state.nextVersion * 10])) }
        if bounds.rewrites { kinds.append(("rewrites", [state.nextVersion * 10 + 1, state.nextVersion * 10])) }
        for (label, chunks) in kinds {
            var written = state
            written.writes -= 1
            written.wrote = true
            written.finals[level] = PullState.File(chunks: chunks, version: state.nextVersion)
            written.nextVersion += 1
            written.current = chunks
            next.append(("write: \(label) L\(level)/f", written))
        }
        return next
    }

    // MARK: - The puller

    /// True while the job is this delivery's (the progress script's check).
    private func isMine(_ state: PullState, _ delivery: PullState.Delivery) -> Bool {
        state.job.status == .moving && state.job.gen == delivery.gen && state.job.token == delivery.token
    }

    /// The endpoint's `job(request)`: the delivery's token and secret those the job recorded, the
    /// job in flight in that generation, its source a level of this host.
    private func credentials(_ state: PullState, key: PullState.Key, gen: Int, level: Int) -> PullState.Refusal? {
        guard state.job.token == key.token, state.job.key == key else { return .wrongCredential }
        guard state.job.gen == gen, state.job.status == .moving else { return .staleDelivery }
        guard state.job.source == level, state.job.target != level else { return .notServed }
        return nil
    }

    /// One step of delivery `index`.
    private func step(_ state: PullState, _ index: Int) -> (String, PullState)? {
        var d = state.deliveries[index]
        guard d.alive else { return nil }
        if case .awaiting(let request, _) = d.step, state.removals[request].active { return nil }
        var next = state
        if let last = state.lastActor, last != .delivery(index), canAct(state, last) {
            guard state.preemptions > 0 else { return nil }
            if state.preemptions != Int.max { next.preemptions -= 1 }
        }
        if state.preemptions != Int.max { next.lastActor = .delivery(index) }
        let me = PullState.Actor.delivery(index)
        let name = "D\(index)"
        /// Ends the pull with `failure`: the lock released (`held.release()` in `pullAndEnd`'s catch).
        func fail(_ failure: PullState.Failure, _ label: String) -> (String, PullState) {
            next.locks = next.locks.filter { $0.value != me }
            if failure == .leaseLost {
                d.step = .ended
            } else {
                d.step = .report(failure)
            }
            next.deliveries[index] = d
            return ("\(name) \(label): \(failure)", next)
        }
        func go(_ step: PullState.Delivery.Step, _ label: String) -> (String, PullState) {
            d.step = step
            next.deliveries[index] = d
            return ("\(name) \(label)", next)
        }
        /// `session.record(delivery, …)`: refused unless the job is this delivery's; clears the fence.
        func record(_ change: (inout PullState.Job) -> Void) -> Bool {
            guard isMine(next, d) else { return false }
            next.job.fence = nil
            change(&next.job)
            return true
        }
        /// `refuseUnlessOK` for a refusal of `HEAD`/`GET`.
        func refused(_ refusal: PullState.Refusal) -> PullState.Failure {
            switch refusal {
            case .wrongCredential, .staleDelivery: return .leaseLost
            case .versionChanged: return .sourceChanged
            case .sourceMissing: return .sourceMissing
            case .contentLocked: return .contentLocked
            case .checksumMismatch: return .destinationConflict
            case .notServed, .notProven: return .ioError
            }
        }
        /// A `HEAD` or `GET` to the source's worker: the credentials, the file, its version.
        func ask(version: Int?) -> Result<PullState.File, PullState.Refusal> {
            if let refusal = credentials(next, key: d.key, gen: d.gen, level: d.source) { return .failure(refusal) }
            guard let file = next.finals[d.source] else { return .failure(.sourceMissing) }
            if let version, version != file.version { return .failure(.versionChanged) }
            return .success(file)
        }
        let temporary = PullState.Temporary(level: d.target, gen: d.gen)

        switch d.step {
        case .lock:
            if next.locks[d.target] == me { return go(.lookup, "keeps its lock in L\(d.target)") }
            guard next.locks[d.target] == nil else { return fail(.contentLocked, "lock L\(d.target)") }
            next.locks[d.target] = me
            return go(.lookup, "lock L\(d.target)")
        case .lookup:
            return go(next.finals[d.target] == nil ? .started : .secret, next.finals[d.target] == nil ? "lookup: no file" : "lookup: a file")
        case .started:
            d.secrets += 1
            let key = d.key
            guard record({ $0.key = key }) else { return fail(.leaseLost, "record secret and route") }
            return go(.locate, "record secret and route")
        case .secret:
            d.secrets += 1
            let key = d.key
            guard record({ $0.key = key }) else { return fail(.leaseLost, "record secret") }
            // `proveFound` reads the file under the final name again (the lock is held: it is the one found).
            guard let found = next.finals[d.target] else { return fail(.ioError, "proveFound: no file") }
            if d.stage == .publishing || d.stage == .published, let recorded = d.checksum {
                guard found.chunks == recorded else { return fail(.destinationConflict, "proveFound: not the copy recorded") }
                d.proof = recorded
                return go(.locateFound, "proveFound: the copy recorded is in place")
            }
            return go(.locateOther, "lookup: a file no delivery recorded")
        case .locateFound:
            switch ask(version: nil) {
            case .success:
                if d.stage == .published { return go(.post(version: d.sourceVersion), "locate") }
                return go(.recordFoundPublished(version: d.sourceVersion, sourceThere: true), "locate")
            case .failure(.sourceMissing):
                if d.stage == .published { return go(.ack, "locate: source missing") }
                return go(.recordFoundPublished(version: d.sourceVersion, sourceThere: false), "locate: source missing")
            case .failure(let refusal):
                return fail(refused(refusal), "locate")
            }
        case .locateOther:
            switch ask(version: nil) {
            case .success(let file): return go(.compareOther(version: file.version), "locate")
            case .failure(let refusal): return fail(refused(refusal), "locate")
            }
        case .compareOther(let version):
            switch ask(version: version) {
            case .success(let file):
                guard file.chunks == next.finals[d.target]?.chunks else { return fail(.destinationConflict, "HEAD prefix: differs") }
                return go(.recordFoundPublishing(version: version), "HEAD prefix: equal")
            case .failure(let refusal): return fail(refused(refusal), "HEAD prefix")
            }
        case .recordFoundPublishing(let version):
            guard let own = next.finals[d.target]?.chunks else { return fail(.ioError, "checksum: no file") }
            guard record({ $0.checksum = own; $0.stage = .publishing; $0.sourceVersion = version }) else {
                return fail(.leaseLost, "record publishing")
            }
            d.proof = own
            return go(.recordFoundPublished(version: version, sourceThere: true), "record publishing")
        case .recordFoundPublished(let version, let sourceThere):
            guard record({ $0.stage = .published }) else { return fail(.leaseLost, "record published") }
            return go(sourceThere ? .post(version: version) : .ack, "record published")
        case .locate:
            switch ask(version: nil) {
            case .success(let file):
                // A fresh pull's `GET` brings the first chunk; a resumed one asks `HEAD`.
                return go(.open(version: file.version, first: d.verified == 0 ? file.chunks[0] : nil), d.verified == 0 ? "locate: GET first range" : "locate: HEAD")
            case .failure(let refusal): return fail(refused(refusal), "locate")
            }
        case .open(let version, let first):
            var part = next.temporaries[temporary] ?? PullState.File(chunks: [], version: 0)
            let kept = min(d.verified <= PullState.chunks ? d.verified : 0, part.chunks.count)
            part.chunks = Array(part.chunks.prefix(kept))
            if kept == 0, let first { part.chunks = [first] }
            next.temporaries[temporary] = part
            if kept > 0 { return go(.prefix(version: version), "open temporary, keep \(kept)") }
            return go(part.chunks.count < PullState.chunks ? .range(version: version) : .publishing(version: version),
                      first == nil ? "open temporary" : "open temporary, write the first range")
        case .prefix(let version):
            switch ask(version: version) {
            case .success(let file):
                let part = next.temporaries[temporary]!
                if mutant != .trustKeptPrefix, Array(file.chunks.prefix(part.chunks.count)) != part.chunks {
                    next.temporaries[temporary]!.chunks = []
                    return go(.range(version: version), "HEAD prefix: differs, restart")
                }
                return go(part.chunks.count < PullState.chunks ? .range(version: version) : .publishing(version: version), "HEAD prefix: resume")
            case .failure(let refusal): return fail(refused(refusal), "HEAD prefix")
            }
        case .range(let version):
            let offset = next.temporaries[temporary]?.chunks.count ?? 0
            switch ask(version: version) {
            case .success(let file):
                guard next.temporaries[temporary] != nil else { return fail(.ioError, "append: the temporary file is gone") }
                next.temporaries[temporary]!.chunks.append(file.chunks[offset])
                return go(.verified(version: version), "GET range \(offset), fsync")
            case .failure(let refusal): return fail(refused(refusal), "GET range \(offset)")
            }
        case .verified(let version):
            let written = next.temporaries[temporary]?.chunks.count ?? 0
            guard record({ $0.verified = written }) else { return fail(.leaseLost, "record verified") }
            return go(written < PullState.chunks ? .range(version: version) : .publishing(version: version), "record verified \(written)")
        case .publishing(let version):
            let copy = next.temporaries[temporary]!.chunks
            guard record({ $0.checksum = copy; $0.stage = .publishing; $0.sourceVersion = version }) else {
                return fail(.leaseLost, "record publishing")
            }
            d.proof = copy
            return go(.link(version: version), "record publishing")
        case .link(let version):
            guard next.finals[d.target] == nil else { return fail(.destinationConflict, "link: the name exists") }
            next.finals[d.target] = PullState.File(chunks: next.temporaries[temporary]!.chunks, version: next.nextVersion)
            next.nextVersion += 1
            next.temporaries[temporary] = nil
            return go(.published(version: version), "link, fsync")
        case .published(let version):
            guard record({ $0.stage = .published }) else { return fail(.leaseLost, "record published") }
            return go(.post(version: version), "record published")
        case .post(let version):
            next.removals.append(PullState.Removal(delivery: index, key: d.key, gen: d.gen, level: d.source, proof: d.proof!, version: version))
            return go(.awaiting(request: next.removals.count - 1, version: version), "POST remove (E\(next.removals.count - 1))")
        case .awaiting(let request, let version):
            guard case .answered(let answer) = next.removals[request].step else { return nil }
            next.removals[request].step = .done
            switch answer {
            case .removed, .alreadyGone:
                return go(.ack, "answer \(answer)")
            case .unreachable:
                // `pullAndEnd`: asked again while the job is still this delivery's, read afresh.
                guard isMine(next, d) else { return fail(.leaseLost, "no answer; the job is no longer its") }
                d.stage = next.job.stage
                d.checksum = next.job.checksum
                d.sourceVersion = next.job.sourceVersion
                d.verified = next.job.verified
                return go(.lookup, "no answer; asks again")
            case .refused(let refusal):
                if version != nil, refusal == .versionChanged || mutant == .withdrawOnAnyRefusal { return go(.withdraw, "answer \(refusal)") }
                return fail(refused(refusal), "answer")
            }
        case .withdraw:
            if let copy = next.finals[d.target] {
                guard copy.chunks == d.proof else { return fail(.checksumMismatch, "withdraw: not its copy") }
                next.finals[d.target] = nil
            }
            return go(.withdrawn, "withdraw its copy, fsync")
        case .withdrawn:
            guard record({ $0.stage = .copying }) else { return fail(.leaseLost, "record copy withdrawn") }
            return fail(.sourceChanged, "record copy withdrawn")
        case .ack:
            // ack.lua: only while the job is still this delivery's; then the lock is released.
            if isMine(next, d) {
                next.job.status = .done
                next.job.checksum = d.proof
                next.job.stage = nil
                next.job.fence = nil
                next.job.verified = 0
                next.job.holder = nil
            }
            next.locks = next.locks.filter { $0.value != me }
            return go(.ended, "ack")
        case .report(let failure):
            reportFailure(&next, d, failure)
            return go(.ended, "report \(failure)")
        case .ended, .crashed:
            return nil
        }
    }

    private func canAct(_ state: PullState, _ actor: PullState.Actor) -> Bool {
        switch actor {
        case .delivery(let index):
            let d = state.deliveries[index]
            if case .awaiting(let request, _) = d.step { return !state.removals[request].active }
            return d.alive
        case .endpoint(let index): return state.removals[index].active
        }
    }

    /// `report`: `RetryDecision.decide`, then defer.lua or fail.lua (token checked).
    private func reportFailure(_ state: inout PullState, _ delivery: PullState.Delivery, _ failure: PullState.Failure) {
        guard isMine(state, delivery) else { return }
        var job = state.job
        job.holder = nil
        switch failure {
        case .leaseLost:
            return
        case .contentLocked:
            // defer.lua without the lock held: the fence stays.
            job.status = .deferred
        case .sourceChanged, .checksumMismatch, .ioError, .destinationConflict, .sourceMissing:
            // fail.lua: the fence goes (the delivery held the lock).
            job.fence = nil
            let permanent = failure == .destinationConflict || failure == .sourceMissing
            let published = job.stage == .publishing || job.stage == .published
            if let follow = job.nextTarget {
                if published {
                    if follow == job.source {
                        reverse(&job)
                        job.status = .retrying
                        state.job = job
                        return
                    }
                } else {
                    job.nextTarget = nil
                    if follow == job.source {
                        job.status = .gone
                        state.job = job
                        return
                    }
                    job.target = follow
                }
            }
            job.status = permanent ? .dead : .retrying
            if permanent { job.deadReason = failure }
        }
        state.job = job
    }

    /// helpers.lua's `reverse`: the target becomes the source (stage, next target cleared; the
    /// checksum, the source version and the verified bytes stay).
    private func reverse(_ job: inout PullState.Job) {
        job.turned = true
        (job.source, job.target) = (job.target, job.source)
        job.gen += 1
        job.status = .queued
        job.stage = nil
        job.nextTarget = nil
        job.holder = nil
    }

    // MARK: - The source's endpoint

    /// One step of removal request `index`, served by the endpoint of its source level's host.
    private func serve(_ state: PullState, _ index: Int) -> [(String, PullState)] {
        let removal = state.removals[index]
        guard removal.active else { return [] }
        var next = state
        if let last = state.lastActor, last != .endpoint(index), canAct(state, last) {
            guard state.preemptions > 0 else { return [] }
            if state.preemptions != Int.max { next.preemptions -= 1 }
        }
        if state.preemptions != Int.max { next.lastActor = .endpoint(index) }
        let me = PullState.Actor.endpoint(index)
        let name = "E\(index)"
        /// The answer, sent — or lost on its way, within the budget.
        func answer(_ answer: PullState.Answer, _ label: String) -> [(String, PullState)] {
            next.locks = next.locks.filter { $0.value != me }
            next.removals[index].step = .answered(answer)
            var lost = next
            var result = [("\(name) \(label): answers \(answer)", next)]
            if next.lostAnswers > 0 {
                lost.lostAnswers -= 1
                lost.removals[index].step = .answered(.unreachable)
                result.append(("\(name) \(label): its answer \(answer) is lost", lost))
            }
            return result
        }
        func go(_ step: PullState.Removal.Step, _ label: String) -> [(String, PullState)] {
            next.removals[index].step = step
            return [("\(name) \(label)", next)]
        }
        /// `newerVersion()`: the source there, of another version than the copy's.
        func newer() -> Bool {
            guard mutant != .noVersionCheck, let expected = removal.version, let file = next.finals[removal.level] else { return false }
            return file.version != expected
        }
        switch removal.step {
        case .read:
            // The level known from the file's GET to this delivery: the lock first, the job read
            // once, under it. Otherwise the job read (and checked) to learn the level first.
            var known = next
            known.removals[index].step = .lock
            let served = ("\(name) served this delivery: its level known", known)
            if let refusal = credentials(next, key: removal.key, gen: removal.gen, level: removal.level) { return answer(.refused(refusal), "job") + [served] }
            return go(.lock, "job checked") + [served]
        case .lock:
            guard next.locks[removal.level] == nil else { return answer(.refused(.contentLocked), "lock L\(removal.level)") }
            next.locks[removal.level] = me
            return go(.check, "lock L\(removal.level)")
        case .check:
            if let refusal = credentials(next, key: removal.key, gen: removal.gen, level: removal.level) { return answer(.refused(refusal), "job read again") }
            guard next.job.stage == .published, next.job.checksum == removal.proof else { return answer(.refused(.notProven), "job read again") }
            if newer() { return answer(.refused(.versionChanged), "version") }
            return go(.hash, "job read again: published, this checksum")
        case .hash:
            guard let file = next.finals[removal.level] else { return answer(.alreadyGone, "removeProven: no file") }
            guard file.chunks == removal.proof else {
                return answer(newer() ? .refused(.versionChanged) : .refused(.checksumMismatch), "removeProven: hash differs")
            }
            return go(.unlink, "removeProven: hash equal, unchanged")
        case .unlink:
            next.finals[removal.level] = nil
            return answer(.removed, "unlink, fsync")
        case .answered, .done:
            return []
        }
    }

    // MARK: - Counts and the committer

    /// enqueue.lua for a count of the level the file comes from (`db_level`), SQL's level read.
    private func countBack(_ state: PullState) -> (String, PullState)? {
        var next = state
        next.counts -= 1
        var job = next.job
        let back = job.source
        let published = job.stage == .publishing || job.stage == .published
        switch job.status {
        case .queued, .retrying, .deferred, .dead where published:
            if job.fence != nil {
                if back != job.target { job.nextTarget = back }
            } else if published {
                // reverse(): the copy at the target becomes the source (a dead one runs again so).
                reverse(&job)
            } else if back == state.sqlLevel {
                job.status = .gone
            } else {
                // Back to the job's origin while SQL names another level: re-aimed from SQL's level.
                job.source = state.sqlLevel
                job.target = back
                job.gen += 1
                job.status = .queued
                job.nextTarget = nil
            }
        case .moving, .done:
            if back != job.target { job.nextTarget = back }
        case .committed, .dead, .gone:
            return nil
        }
        next.job = job
        return ("count back to L\(back)", next)
    }

    /// committed.lua: the level recorded when the generation is newer, then the follow-up.
    private func commit(_ state: PullState) -> (String, PullState) {
        var next = state
        var job = next.job
        if job.gen > next.sqlGen {
            next.sqlLevel = job.target
            next.sqlGen = job.gen
        }
        if let follow = job.nextTarget, follow != job.target {
            job.source = job.target
            job.target = follow
            job.gen += 1
            job.status = .queued
            job.stage = nil
            job.checksum = nil
            job.nextTarget = nil
        } else {
            job.status = .committed
        }
        next.job = job
        return ("commit", next)
    }
}
