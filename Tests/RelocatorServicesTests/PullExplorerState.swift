/// The state the pull explorer searches (`PullExplorer`): one content on two levels, each on its
/// own host with its own content lock (an OFD lock in `<level>/.relocator/lock`), the job as the
/// queue scripts keep it, the row as SQL keeps it, every delivery of the job (a puller on the
/// target's host, `Worker.pull`) and every removal request in flight at a source's endpoint
/// (`TransferEndpoint.remove`). A value: the explorer copies it to branch and hashes it to skip
/// states already visited.
struct PullState: Hashable {
    /// Who holds a lock: a delivery (the puller, in its target level) or a removal request being
    /// served (the endpoint, in its source level).
    enum Actor: Hashable {
        case delivery(Int)
        case endpoint(Int)
    }

    /// A file's bytes as chunks (`Worker.pullChunk` ranges; a checksum is the chunks themselves),
    /// and its version (`ServedFile.version`: device, inode, size, times — changed by every write).
    struct File: Hashable {
        var chunks: [Int]
        var version: Int
    }

    /// The job's fields the pull and the endpoint read or write (`JobField`).
    struct Job: Hashable {
        enum Status: Hashable { case queued, moving, deferred, retrying, done, committed, dead, gone }
        enum Stage: Hashable { case copying, publishing, published }
        var status: Status = .queued
        var gen = 1
        var token = 0
        /// `db_level` and `target`: level 0 is host A's, level 1 host B's.
        var source = 0
        var target = 1
        var stage: Stage?
        var checksum: [Int]?
        var sourceVersion: Int?
        var verified = 0
        /// `transfer_key`: the token and the secret of the delivery that recorded it.
        var key: Key?
        var fence: Int?
        var nextTarget: Int?
        var holder: Int?
        var deadReason: Failure?
        /// Turned around by a count (`reverse`) at least once.
        var turned = false
    }

    struct Key: Hashable {
        var token: Int
        var secret: Int
    }

    /// Why a delivery ended without moving (`MoveError` kinds), decided as `RetryDecision.decide`.
    enum Failure: Hashable {
        case leaseLost, contentLocked, sourceChanged, checksumMismatch, destinationConflict, sourceMissing, ioError
    }

    /// What the endpoint refuses with (`TransferProtocol.Refusal`).
    enum Refusal: Error, Hashable { case wrongCredential, staleDelivery, notServed, sourceMissing, versionChanged, contentLocked, notProven, checksumMismatch }

    /// What a removal request answers, as the puller receives it.
    enum Answer: Hashable {
        case removed, alreadyGone
        case refused(Refusal)
        /// No answer: the source's worker died, or the answer was lost on the way.
        case unreachable
    }

    /// One delivery: a worker process on the target's host that claimed the job with `token`, the
    /// job as it read it (at the claim, again after a reconnect), and where its pull is.
    struct Delivery: Hashable {
        enum Step: Hashable {
            /// `pull`: `ContentLock.tryLock` in the target level (kept across reconnects).
            case lock
            /// `root.lookup(filename)`: a file under the final name goes to `proveFound` (after
            /// `secret`), none to the pull (after `started`).
            case lookup
            /// `session.record(.transferSecret)`, then `proveFound` reads the file found again.
            case secret
            /// `session.record(.pullStarted)`: the secret and the route in one record.
            case started
            /// `proveFound`, stage publishing/published: the copy checked against the recorded
            /// checksum, then `locate` (`HEAD`), a missing source tolerated.
            case locateFound
            /// `proveFound`, no stage: `locate`, then `HEAD` of the prefix with the version and the
            /// local xxh128 compared.
            case locateOther
            case compareOther(version: Int)
            /// `root.checksum(of:)` and `record(.publishing(…, sourceVersion: found.version))`.
            case recordFoundPublishing(version: Int)
            /// `root.syncDirectory(of:)` and `record(.published)`.
            case recordFoundPublished(version: Int?, sourceThere: Bool)
            /// `pull`: `locate` — a fresh pull's `GET` of the first range (the first chunk, with
            /// the version), a resumed pull's `HEAD`.
            case locate
            /// `ReceivedCopy.open`: the temporary file, its verified prefix kept, or the first
            /// chunk the locating `GET` brought written.
            case open(version: Int, first: Int?)
            /// `HEAD` with `Range: bytes=0-<kept-1>` and the version: the kept prefix compared.
            case prefix(version: Int)
            /// `pullChunk` (`GET` with the version), `copy.append`, `copy.sync`.
            case range(version: Int)
            /// `record(.verified)`.
            case verified(version: Int)
            /// `copy.verify` and `record(.publishing(checksum, sourceVersion:))`.
            case publishing(version: Int)
            /// `copy.publish`: linked under the final name (never replacing), its directory fsynced.
            case link(version: Int)
            /// `record(.published)`.
            case published(version: Int)
            /// `removeSource`: `POST …/remove` with the checksum and the version.
            case post(version: Int?)
            /// Waiting for the answer of removal request `request`.
            case awaiting(request: Int, version: Int?)
            /// `removeSource` after `version_changed`: `root.removeProven` of the published copy.
            case withdraw
            /// `record(.copyWithdrawn)`.
            case withdrawn
            /// `finishPulled`: `session.complete(.moved)` (ack.lua), then the lock released.
            case ack
            /// `report`: the lock released, then fail.lua or defer.lua.
            case report(Failure)
            case ended
            /// Killed: it does nothing more; its lock is released by the kernel.
            case crashed
        }

        var token: Int
        var gen: Int
        var source: Int
        var target: Int
        /// The job as the delivery read it (`delivery.job`): stage, checksum, source version, verified.
        var stage: Job.Stage?
        var checksum: [Int]?
        var sourceVersion: Int?
        var verified: Int
        /// The secrets this delivery drew so far (one per run of `pull`).
        var secrets = 0
        /// The checksum of the copy it proves (`removeSource`'s `checksum`).
        var proof: [Int]?
        var step: Step = .lock
        var faulty: Bool

        var alive: Bool {
            switch step {
            case .ended, .crashed: return false
            default: return true
            }
        }

        var key: Key { Key(token: token, secret: secrets) }
    }

    /// A removal request being served by the endpoint of `level`'s host (`TransferEndpoint.remove`).
    struct Removal: Hashable {
        enum Step: Hashable {
            /// `job(request)`: the credentials checked, before the lock — or, for a delivery this
            /// endpoint served the file to, none: its level is known (`ServedDeliveries`).
            case read
            /// `ContentLock.tryLock` in the source level.
            case lock
            /// Under the lock: the job read again (credentials, stage published with this checksum),
            /// then `newerVersion()`.
            case check
            /// `removeProven`: opened, hashed, equal to the proof, unchanged since hashed.
            case hash
            /// `removeProven`: unlinked and its directory fsynced; then the answer.
            case unlink
            case answered(Answer)
            /// The answer was taken by the puller (or nobody waits for it).
            case done
        }
        var delivery: Int
        var key: Key
        var gen: Int
        var level: Int
        var proof: [Int]
        var version: Int?
        var step: Step = .read

        var active: Bool {
            switch step {
            case .read, .lock, .check, .hash, .unlink: return true
            case .answered, .done: return false
            }
        }
    }

    /// The name of a level's temporary file of a generation (`.relocator/tmp/<cid>-<gen>.part`).
    struct Temporary: Hashable {
        var level: Int
        var gen: Int
    }

    static let chunks = 2

    /// The file under its name on each level (nil: none).
    var finals: [File?] = [File(chunks: [1, 2], version: 1), nil]
    var temporaries: [Temporary: File] = [:]
    var nextVersion = 2
    /// The bytes of the content's current version: what was last written (the original at first).
    var current = [1, 2]
    var locks: [Int: Actor] = [:]
    var job = Job()
    var sqlLevel = 0
    var sqlGen = 0
    var deliveries: [Delivery] = []
    var removals: [Removal] = []
    // What is left of the budget of faults and events.
    var reaps: Int
    var crashes: Int
    var endpointCrashes: Int
    var lostAnswers: Int
    var counts: Int
    var writes: Int
    var wrote = false
    var preemptions: Int
    var lastActor: Actor?

    /// Levels holding the current version, complete, under its name.
    var currentCopies: [Int] {
        finals.indices.filter { finals[$0]?.chunks == current }
    }

    /// Levels holding any file under its name.
    var copies: [Int] {
        finals.indices.filter { finals[$0] != nil }
    }
}
