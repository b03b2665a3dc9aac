/// Who queued a job and the rule that chose its target, kept in the job (`JobField.queuedBy`)
/// from the moment it is created or re-aimed, so that `why` can say it: a count
/// (`POST /post_sentence`, `POST /v1/contents/{cid}/count`, `relocator enqueue`), hits, the
/// rebalancer (a watermark demotion, a displacement, a decay demotion, a promotion), a replay of a
/// dead letter, a purge that sends a copy back, or a follow-up queued when a move committed.
public struct QueuedBy: Sendable, Equatable {
    /// Who: `POST /post_sentence`, `relocator enqueue`, `the rebalancer (watermark)`…
    public var who: String
    /// The rule that chose the target, in a sentence: `count 5000 falls in silver (1000–9999)`.
    public var rule: String

    public init(who: String, rule: String) {
        self.who = who
        self.rule = rule
    }

    /// As the job hash keeps it: who, a newline, the rule (the scripts that compose one — a
    /// follow-up's — put their words in front of the first line).
    public var stored: String {
        // A name with no line feed at all (every one the code gives) is kept as it is: the generic
        // `replacing` costs more than the rest of a submission's arguments together.
        let who = self.who.utf8.contains(UInt8(ascii: "\n")) ? self.who.replacing("\n", with: " ") : self.who
        return who + "\n" + rule
    }

    public init(stored: String) {
        // The first line feed that is a character of its own (`firstIndex(of: "\n")`: the "\n" of
        // a "\r\n" is part of another character), found in the bytes: every submission's answer
        // reads one.
        var newline: String.Index?
        var previous: UInt8 = 0
        for index in stored.utf8.indices {
            let byte = stored.utf8[index]
            if byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r") {
                newline = index
                break
            }
            previous = byte
        }
        if let newline {
            who = String(stored[..<newline])
            rule = String(stored[stored.index(after: newline)...])
        } else {
            who = stored
            rule = ""
        }
    }

    /// One sentence: `POST /post_sentence: count 5000 falls in silver (1000–9999)`.
    public var sentence: String { rule.isEmpty ? who : "\(who): \(rule)" }
}

/// Where a count or hits came from, as `QueuedBy.who` names it.
public enum Submitter: Sendable, Equatable {
    /// `POST /post_sentence`, the original route.
    case postSentence
    /// `POST /v1/contents/{cid}/count`.
    case countRoute
    /// `relocator enqueue --cid --count` or `--file`.
    case enqueueCommand
    /// `POST /v1/contents/{cid}/hits`.
    case hitsRoute
    /// `relocator enqueue --hits`.
    case hitsCommand
    /// The rebalancer, for a move of a planner's kind (`watermark`, `displacement`, `decay`, `promotion`).
    case rebalancer(kind: String)
    /// Anything else that submits through the seam (tests, tools).
    case other(String)

    public var who: String {
        switch self {
        case .postSentence: return "POST /post_sentence"
        case .countRoute: return "POST /v1/contents/{cid}/count"
        case .enqueueCommand: return "relocator enqueue"
        case .hitsRoute: return "POST /v1/contents/{cid}/hits"
        case .hitsCommand: return "relocator enqueue --hits"
        case .rebalancer(let kind): return "the rebalancer (\(kind))"
        case .other(let name): return name
        }
    }
}

extension QueuedBy {
    /// A count's: who sent it and the range it falls in (or the top level's raised `max_counts`).
    public static func count(_ count: Int64, from submitter: Submitter, level: String, range: LevelRange?, raised: Bool) -> QueuedBy {
        let rule: String
        if raised {
            rule = "count \(count) is above every range: \(level)'s max_counts was raised to it"
        } else if let range {
            rule = "count \(count) falls in \(level) (\(range.minCounts)–\(range.maxCounts))"
        } else {
            rule = "count \(count) falls in \(level)"
        }
        return QueuedBy(who: submitter.who, rule: rule)
    }

    /// A count's, from the placement's decision for it: the range it falls in, the top level's
    /// raised `max_counts`, or the rule that keeps it where it is (hysteresis, a residency).
    public static func count(_ count: Int64, from submitter: Submitter, decision: Placement.Decision, placement: Placement) -> QueuedBy {
        if let held = decision.heldBy { return QueuedBy(who: submitter.who, rule: "count \(count) keeps it on \(decision.level): \(held)") }
        return .count(count, from: submitter, level: decision.level, range: placement.table.ranges.first { $0.name == decision.level },
                      raised: decision.raiseMaxCounts != nil)
    }

    /// A replay of a dead letter: the job keeps its target and the rule that chose it.
    public static func replay(by who: String, earlier: QueuedBy?) -> QueuedBy {
        QueuedBy(who: "a replay (\(who))" + (earlier.map { " of a job queued by \($0.who)" } ?? ""),
                 rule: earlier?.rule ?? "the target it had when it died")
    }

    /// A purge of a dead job whose copy may already be at its target: it goes back.
    public static func purgeReversal(by who: String, copyOn target: String, backTo origin: String) -> QueuedBy {
        QueuedBy(who: "a purge (\(who))", rule: "its copy may already be on \(target): it goes back to \(origin), where the database has it")
    }

    /// The words committed.lua puts in front of a follow-up's `queued_by` (kept here beside the
    /// others; the script spells the same words, and a test compares them).
    public static func followUpPrefix(after level: String) -> String { "a follow-up after the move to \(level) of " }
}
