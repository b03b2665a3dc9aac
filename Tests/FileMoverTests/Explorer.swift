@testable import FileMover
import RelocatorCore

/// Runs several deliveries of one content's job through every interleaving of their steps — each
/// step of each delivery is one `MoveMachine.advance`, the mover's own transition code — together
/// with what the rest of the system may do between any two steps: the reaper giving the job back
/// (a paused process looks dead), a count sending the file back where it came from, a delivery
/// killed, the committer, a deferred job coming due. A depth-first search that skips states
/// already visited; with a preemption bound, a delivery switched away from while it could go on
/// counts against the bound.
///
/// After every step at least one complete copy of the content must exist under its name; at the
/// end — nothing left to do — exactly one, on the level SQL records, with no lock held.
///
/// The job's side follows the queue scripts (`claim`, `progress`, `ack`, `defer`, `giveback`,
/// `enqueue`, `committed`) for the fields the protocol reads; the scripts themselves are tested
/// against Redis in `JobQueueTests`.
struct Explorer {
    struct Bounds {
        /// Deliveries that may be reaped while they still act, or killed.
        var faulty = 2
        /// Clean deliveries afterwards, to finish the job.
        var clean = 3
        var reaps = 2
        var crashes = 1
        /// Counts back to the level the file comes from.
        var counts = 1
        /// Nil: every interleaving.
        var preemptions: Int?
    }

    struct Report {
        var states = 0
        var transitions = 0
        /// Complete executions from the start to an end (paths through the graph of states).
        var interleavings = 0.0
        var ends = 0
        var violations: [String] = []
    }

    let bounds: Bounds
    /// For the explorer's own test: the mover with its content lock removed (a mutant).
    let ignoreLocks: Bool
    private var paths: [ExplorerState: Double] = [:]
    private(set) var report = Report()

    init(bounds: Bounds, ignoreLocks: Bool = false) {
        self.bounds = bounds
        self.ignoreLocks = ignoreLocks
    }

    static func start(crossDevice: Bool, bounds: Bounds) -> ExplorerState {
        ExplorerState(devices: crossDevice ? [1, 2] : [1, 1], reaps: bounds.reaps, crashes: bounds.crashes, counts: bounds.counts,
                      preemptions: bounds.preemptions ?? Int.max)
    }

    mutating func run(from start: ExplorerState) -> Report {
        report.interleavings = explore(start, trail: [])
        report.states = paths.count
        return report
    }

    /// The number of complete executions from `state`.
    private mutating func explore(_ state: ExplorerState, trail: [String]) -> Double {
        if let known = paths[state] { return known }
        let next = successors(state)
        var total = 0.0
        if next.isEmpty {
            report.ends += 1
            if let problem = endProblem(state) { violation(problem, trail, state) }
            total = 1
        }
        for (label, successor) in next {
            report.transitions += 1
            if successor.copies.isEmpty { violation("no complete copy is left", trail + [label], successor) }
            total += explore(successor, trail: trail + [label])
        }
        paths[state] = total
        return total
    }

    private mutating func violation(_ what: String, _ trail: [String], _ state: ExplorerState) {
        guard report.violations.count < 5 else { return }
        report.violations.append("\(what) after: \(trail.joined(separator: ", ")); names \(state.names.map { "L\($0.key.level)/\($0.key.path)=\($0.value)" }.sorted()), SQL L\(state.sqlLevel)")
    }

    private func endProblem(_ state: ExplorerState) -> String? {
        if state.deliveries.contains(where: \.alive) { return "a delivery never ended" }
        if !state.locks.isEmpty { return "a lock is still held" }
        if state.job.status != .committed && state.job.status != .gone { return "the job ended \(state.job.status)" }
        if state.copies != [state.sqlLevel] { return "copies on \(state.copies), SQL says L\(state.sqlLevel)" }
        return nil
    }

    // MARK: - Transitions

    private func successors(_ state: ExplorerState) -> [(String, ExplorerState)] {
        var next: [(String, ExplorerState)] = []
        for index in state.deliveries.indices {
            if let moved = step(state, index) { next.append(moved) }
            if state.deliveries[index].faulty, state.deliveries[index].alive, state.crashes > 0 {
                var crashed = state
                crashed.crashes -= 1
                crashed.deliveries[index].phase = .crashed
                crashed.locks = crashed.locks.filter { $0.value != index }
                next.append(("kill D\(index)", crashed))
            }
        }
        var job = state.job
        if job.status == .moving, let holder = job.holder {
            // The reaper: always for a killed holder; for one that may only be paused, within the budget.
            let killed = !state.deliveries[holder].alive
            if killed || (state.deliveries[holder].faulty && state.reaps > 0) {
                var reaped = state
                if !killed { reaped.reaps -= 1 }
                reaped.job.status = .queued
                reaped.job.fence = job.token
                reaped.job.holder = nil
                next.append(("reap D\(holder)", reaped))
            }
        }
        if job.status == .queued, claimAllowed(state) {
            var claimed = state
            job.token += 1
            job.status = .moving
            job.holder = state.deliveries.count
            claimed.job = job
            claimed.deliveries.append(ExplorerState.Delivery(
                token: job.token, gen: job.gen, source: job.source, target: job.target, expected: job.checksum,
                phase: .moving(MoveMachine()), faulty: state.deliveries.count < bounds.faulty))
            next.append(("claim D\(state.deliveries.count)", claimed))
        }
        if state.job.status == .deferred || state.job.status == .retrying {
            var due = state
            due.job.status = .queued
            next.append(("due", due))
        }
        if state.counts > 0, let counted = countBack(state) { next.append(counted) }
        if state.job.status == .done { next.append(commit(state)) }
        return next
    }

    /// Faulty deliveries whenever the job waits; clean ones only once no lock is held (a clean
    /// delivery that would only find the lock busy adds nothing the faulty ones do not).
    private func claimAllowed(_ state: ExplorerState) -> Bool {
        if state.deliveries.count < bounds.faulty { return true }
        return state.deliveries.count < bounds.faulty + bounds.clean && state.locks.isEmpty
    }

    /// One step of delivery `index`: a step of its move, or its ack.
    private func step(_ state: ExplorerState, _ index: Int) -> (String, ExplorerState)? {
        let delivery = state.deliveries[index]
        var next = state
        if let last = state.lastActor, last != index, canStep(state, last) {
            guard state.preemptions > 0 else { return nil }
            if state.preemptions != Int.max { next.preemptions -= 1 }
        }
        next.lastActor = index
        switch delivery.phase {
        case .moving(var machine):
            let label = "D\(index) \(machine.step.rawValue)"
            if ignoreLocks, machine.step == .lock { next.locks = [:] }
            let world = ExplorerWorld(next, delivery: index)
            let outcome = machine.advance(world)
            next = world.state
            if ignoreLocks { next.locks = [:] }
            switch outcome {
            case .next:
                next.deliveries[index].phase = .moving(machine)
            case .finished(let result):
                next.deliveries[index].phase = .acking(result)
            case .busy:
                next.deliveries[index].phase = .ended
                deferJob(&next, delivery)
            case .failed(let error as MoveError) where error.kind == .leaseLost:
                next.deliveries[index].phase = .ended
            case .failed(let error):
                // No failure is expected without outside writers: report it as a finding.
                next.deliveries[index].phase = .ended
                next.job.status = .dead
                return ("\(label) failed: \(error)", next)
            }
            return (label, next)
        case .acking:
            // ack.lua: only while the job is still this delivery's.
            if next.job.status == .moving, next.job.gen == delivery.gen, next.job.token == delivery.token {
                next.job.status = .done
                next.job.fence = nil
                next.job.holder = nil
            }
            next.deliveries[index].phase = .ended
            return ("D\(index) ack", next)
        case .ended, .crashed:
            return nil
        }
    }

    private func canStep(_ state: ExplorerState, _ index: Int) -> Bool {
        state.deliveries.indices.contains(index) && state.deliveries[index].alive
    }

    /// defer.lua for a delivery that found the lock busy: the fence stays.
    private func deferJob(_ state: inout ExplorerState, _ delivery: ExplorerState.Delivery) {
        guard state.job.status == .moving, state.job.gen == delivery.gen, state.job.token == delivery.token else { return }
        state.job.status = .deferred
        state.job.holder = nil
    }

    /// enqueue.lua for a count of the level the file comes from.
    private func countBack(_ state: ExplorerState) -> (String, ExplorerState)? {
        var next = state
        next.counts -= 1
        var job = next.job
        let back = job.source
        switch job.status {
        case .queued, .retrying, .deferred:
            if job.fence != nil {
                job.nextTarget = back
            } else if job.published {
                // reverse(): the copy at the target becomes the source.
                (job.source, job.target) = (job.target, job.source)
                job.gen += 1
                job.status = .queued
                job.published = false
                job.nextTarget = nil
            } else {
                job.status = .gone
            }
        case .moving, .done:
            job.nextTarget = back
        case .committed, .dead, .gone:
            return nil
        }
        next.job = job
        return ("count back to L\(back)", next)
    }

    /// committed.lua: the level recorded when the generation is newer, then the follow-up.
    private func commit(_ state: ExplorerState) -> (String, ExplorerState) {
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
            job.published = false
            job.checksum = nil
            job.nextTarget = nil
        } else {
            job.status = .committed
        }
        next.job = job
        return ("commit", next)
    }
}
