/// Admission of a worker slot's moves — permits, room, bandwidth — as values that take events and
/// return actions, the way postgres-nio's connection state machine does. They do no I/O: the
/// worker's loop performs each action (a queue call, a look at the disk, a wait) and feeds what
/// came back in as the next event. Tested without a server or a disk.
public enum Admission {
    /// Which levels a slot may take from when some have a limit of moves in flight (`max_moves`):
    /// the levels in order, each limited one only while the slot holds one of its permits.
    public struct Permits: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            /// Ask the queue for one of `level`'s `most` permits; answer with `answered`.
            case askPermit(level: String, most: Int)
            /// Wait for a delivery from these levels (in this order); then `delivered`.
            case take([String])
            /// Every level is at its limit: wait a little and try again later.
            case idle
        }

        private var pending: [String]
        private let limits: [String: Int]
        private var asking: String?
        public private(set) var permitted: [String] = []
        /// The permits this slot holds now.
        public private(set) var held: [String] = []

        /// `levels` in the order they are taken; `limits`, each limited level's `max_moves` (a
        /// limit of 0 or less is no limit, as `max-moves 0` says).
        public init(levels: [String], limits: [String: Int]) {
            pending = levels
            self.limits = limits.filter { $0.value > 0 }
        }

        public mutating func start() -> Action { advance() }

        /// The queue's answer to the last `askPermit`.
        public mutating func answered(_ answer: AdmissionAnswer) -> Action {
            if let level = asking, answer == .granted {
                held.append(level)
                permitted.append(level)
            }
            asking = nil
            return advance()
        }

        /// What the slot got (`nil`: nothing, or the call failed): the permits to keep for the
        /// move, and those to give back now.
        public func delivered(from level: String?) -> (keep: [String], release: [String]) {
            let keep = held.filter { $0 == level }
            return (keep, held.filter { $0 != level })
        }

        private mutating func advance() -> Action {
            while !pending.isEmpty {
                let level = pending.removeFirst()
                if let most = limits[level] {
                    asking = level
                    return .askPermit(level: level, most: most)
                }
                permitted.append(level)
            }
            return permitted.isEmpty ? .idle : .take(permitted)
        }
    }

    /// Whether a copy into a level with a high watermark may start: its size (less what an earlier
    /// delivery's temporary file already holds there), the target's disk now, and room reserved in
    /// the queue against every other slot's copies into it.
    public struct Room: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            /// Find the source file's size; answer with `sourceSized`.
            case sizeSource
            /// Find the size of an earlier delivery's temporary file at the target; answer with
            /// `earlierCopySized`.
            case sizeEarlierCopy
            /// Read the target's disk; answer with `diskRead`.
            case readDisk
            /// Reserve `bytes` of the `room` left; answer with `reserved` or `reserveFailed`.
            case reserve(bytes: Int64, room: Int64)
            /// Move now; `reserved` bytes (when not nil) are to be released when the move ends.
            case go(reserved: Int64?)
            /// Do not move now: this is why (the job is deferred with it).
            case wait(String)
        }

        private let target: String
        private let placement: Placement
        private var size: Int64 = 0
        private var usage: Placement.Usage?
        private var room: Int64 = 0

        public init(target: String, placement: Placement) {
            self.target = target
            self.placement = placement
        }

        public func start() -> Action {
            placement.policies[target]?.highWater == nil ? .go(reserved: nil) : .sizeSource
        }

        /// The source's size; nil when it cannot be read (the move itself reports what is wrong).
        public mutating func sourceSized(_ bytes: Int64?) -> Action {
            guard let bytes else { return .go(reserved: nil) }
            size = max(0, bytes)
            return .sizeEarlierCopy
        }

        /// The earlier delivery's temporary file at the target (nil: none, or unknown): its blocks
        /// are in the disk's usage already, and the move removes it first.
        public mutating func earlierCopySized(_ bytes: Int64?) -> Action {
            if let bytes, bytes > 0 { size = max(0, size.saturatingSubtract(bytes)) }
            return .readDisk
        }

        /// The target's disk now (nil: no report of it).
        public mutating func diskRead(_ usage: Placement.Usage?) -> Action {
            guard let usage, let room = placement.room(in: target, usage: usage) else { return .go(reserved: nil) }
            self.usage = usage
            self.room = room
            return .reserve(bytes: size, room: room)
        }

        /// The queue's answer to `reserve`.
        public func reserved(_ answer: AdmissionAnswer) -> Action {
            let others: Int64
            switch answer {
            case .granted: return .go(reserved: size)
            case .roomHeld(let held): others = held
            case .refused, .wait: others = 0
            }
            guard let usage else { return .wait("\(target) has room for \(room) bytes, and other copies into it hold \(others)") }
            return .wait(placement.admission(into: target, usage: usage, adding: size, inFlight: others)
                         ?? "\(target) has room for \(room) bytes, and other copies into it hold \(others)")
        }

        /// The reservation could not be asked for: not knowing what the others are copying there,
        /// this copy waits rather than overfill.
        public func reserveFailed(_ error: String) -> Action {
            .wait("cannot reserve room in \(target): \(error)")
        }
    }

    /// Paying for `bytes` about to be written from a level's token bucket of `rate` bytes a
    /// second, in pieces of at most a twentieth of a second of the rate, so the rate holds from
    /// the first byte on.
    public struct Bandwidth: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            /// Take `bytes` from the bucket; answer with `answered` (or `failed`).
            case pay(Int64)
            /// Wait this long, then `slept`.
            case sleep(Duration)
            /// Paid: write.
            case write
        }

        public private(set) var owed: Int64
        private let piece: Int64

        public init(bytes: Int64, rate: Int64) {
            owed = max(0, bytes)
            piece = max(1, rate / 20)
        }

        public func start() -> Action { owed > 0 ? .pay(min(owed, piece)) : .write }

        /// The bucket's answer to `pay`.
        public mutating func answered(_ answer: AdmissionAnswer) -> Action {
            if case .wait(let wait) = answer { return .sleep(wait) }
            owed -= min(owed, piece)
            return start()
        }

        /// The wait asked for is over: ask again.
        public func slept() -> Action { start() }

        /// The bucket cannot be reached: the write goes on unlimited rather than stop the move.
        public mutating func failed() -> Action {
            owed = 0
            return .write
        }
    }
}
