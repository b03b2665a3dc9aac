import FileMover
import Foundation
import RelocatorCore
import Synchronization

/// Fault injection for tests, from `RELOCATOR_FAULTS` (unset in normal runs, where nothing is
/// wrapped), comma-separated. The worker knows none of it: `relocator worker` wraps its queue
/// (`FaultyQueueDriver`) and its mover (`NoopMover`, the mover's step hooks) when it is set.
/// - `crash-after=<step>`: SIGKILL after that step of a move (`MoveStep`: copied, synced, verified,
///   published, targetDirectorySynced, sourceRemoved, sourceDirectorySynced);
/// - `fail-after=<step>` or `fail-after=<step>*N`: an I/O error right after that step, for every move
///   or the first N (`fail-after=published*20`: a failure after the copy was published);
/// - `pause-after=<step>:<ms>`: sleep that long right after that step of every move (a slow disk
///   between two steps, for tests that must land in that window);
/// - `stop-after=<step>` or `stop-after=<step>*N`: the process stops itself (SIGSTOP) right after
///   that step, the first time or the first N times — a VM pause, for a test to wake it with
///   SIGCONT once others have acted;
/// - `crash-before-ack`: SIGKILL between a verified move and its ack;
/// - `crash-after-chunk=N`: SIGKILL right after the Nth chunk a pull from another host fsynced
///   and recorded as verified;
/// - `crash-before-published`: SIGKILL when a pull from another host, its copy linked under the
///   final name and the directory fsynced, is about to record `stage=published`;
/// - `corrupt-read-back=N`: flip a byte of the first N copies between the write and the read-back;
/// - `lose-reply=N`: act on every Nth claim as if its reply had been lost (the job stays in the
///   worker's processing list for the maintenance loop to give back);
/// - `noop-move`: acknowledge jobs without touching any file (the benchmark's measure of the queue).
public struct WorkerFaults: Sendable {
    public var move: MoveFaults?
    public var crashBeforeAck = false
    public var noopMove = false
    /// Every `loseReply`th claim is treated as lost (0: never).
    public var loseReply = 0
    /// Counts the records of bytes copied down to the crash (`crash-after-chunk`).
    var crashAfterChunk: Countdown?
    /// SIGKILL before a pull records its copy published (`crash-before-published`).
    var crashBeforePublished = false
    public var isActive: Bool { move != nil || crashBeforeAck || noopMove || loseReply > 0 || crashAfterChunk != nil || crashBeforePublished }

    public init() {}

    /// The longest `pause-after` (ms): an hour, whose microseconds `usleep` still takes.
    static let longestPause: UInt32 = 3_600_000

    public init(parsing text: String?) throws {
        guard let text, !text.isEmpty else { return }
        let steps = MoveStep.allCases.map(\.rawValue).joined(separator: ", ")
        var crashAfter: MoveStep?
        var pauses: [(MoveStep, UInt32)] = []
        var stops: [(MoveStep, Countdown)] = []
        var failures: [(MoveStep, Countdown?)] = []
        var corrupt: Countdown?
        for item in text.split(separator: ",") {
            // (An item of `=` alone splits into nothing: it names no fault.)
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            switch (parts[0], parts.count > 1 ? parts[1] : nil) {
            case ("crash-after", let name?):
                guard let step = MoveStep(rawValue: name) else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "crash-after=<step>, one of \(steps)")
                }
                crashAfter = step
            case ("fail-after", let value?):
                let pieces = value.split(separator: "*", maxSplits: 1).map(String.init)
                guard let step = pieces.first.flatMap(MoveStep.init(rawValue:)), pieces.count == 1 || Int(pieces[1]).map({ $0 > 0 }) == true else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "fail-after=<step> or fail-after=<step>*N, with a step of \(steps)")
                }
                failures.append((step, pieces.count == 2 ? Countdown(Int(pieces[1])!) : nil))
            case ("pause-after", let value?):
                let pieces = value.split(separator: ":", maxSplits: 1).map(String.init)
                guard pieces.count == 2, let step = MoveStep(rawValue: pieces[0]), let ms = UInt32(pieces[1]), ms <= Self.longestPause else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "pause-after=<step>:<ms>, with a step of \(steps) and at most \(Self.longestPause) ms")
                }
                pauses.append((step, ms))
            case ("stop-after", let value?):
                let pieces = value.split(separator: "*", maxSplits: 1).map(String.init)
                guard let step = pieces.first.flatMap(MoveStep.init(rawValue:)), pieces.count == 1 || Int(pieces[1]).map({ $0 > 0 }) == true else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "stop-after=<step> or stop-after=<step>*N, with a step of \(steps)")
                }
                stops.append((step, Countdown(pieces.count == 2 ? Int(pieces[1])! : 1)))
            case ("crash-before-ack", nil):
                crashBeforeAck = true
            case ("crash-before-published", nil):
                crashBeforePublished = true
            case ("crash-after-chunk", let count?):
                guard let chunks = Int(count), chunks > 0 else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "crash-after-chunk=N with N ≥ 1")
                }
                crashAfterChunk = Countdown(chunks)
            case ("noop-move", nil):
                noopMove = true
            case ("lose-reply", let count?):
                guard let every = Int(count), every > 0 else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "lose-reply=N with N ≥ 1")
                }
                loseReply = every
            case ("corrupt-read-back", let count?):
                guard let limit = Int(count), limit > 0 else {
                    throw ConfigurationError(setting: "RELOCATOR_FAULTS", expected: "corrupt-read-back=N with N ≥ 1")
                }
                corrupt = Countdown(limit)
            default:
                throw ConfigurationError(setting: "RELOCATOR_FAULTS",
                                         expected: "crash-after=<step>, fail-after=<step>[*N], pause-after=<step>:<ms>, stop-after=<step>[*N], crash-before-ack, crash-before-published, crash-after-chunk=N, corrupt-read-back=N, lose-reply=N or noop-move (got '\(item)')")
            }
        }
        if crashAfter == nil && failures.isEmpty && corrupt == nil && pauses.isEmpty && stops.isEmpty { return }
        var faults = MoveFaults()
        if crashAfter != nil || !failures.isEmpty || !pauses.isEmpty || !stops.isEmpty {
            let (injected, crash, sleeps, halts) = (failures, crashAfter, pauses, stops)
            faults.onStep = { step in
                for (pausing, ms) in sleeps where pausing == step { usleep(ms * 1000) }
                for (stopping, remaining) in halts where stopping == step && remaining.take() { raise(SIGSTOP) }
                if step == crash { raise(SIGKILL) }
                for (failing, remaining) in injected where failing == step {
                    if let remaining, !remaining.take() { continue }
                    throw MoveError(.ioError, "fault injection: a failure after the step '\(step.rawValue)'")
                }
            }
        }
        if let corrupt {
            faults.corruptBeforeReadBack = { corrupt.take() }
        }
        move = faults
    }
}

/// A number of faults left to inject.
final class Countdown: Sendable {
    private let left: Atomic<Int>
    init(_ count: Int) { left = Atomic(count) }
    /// True while some are left (and uses one up).
    func take() -> Bool { left.subtract(1, ordering: .relaxed).newValue >= 0 }
    /// True for the use that takes the last one.
    func takesTheLast() -> Bool { left.subtract(1, ordering: .relaxed).newValue == 0 }
}
