import RelocatorApp
import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore
import SQLStore
import Synchronization
import SystemPackage

/// One thing reconcile found.
public struct Finding: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The file is on another level than the database says.
        case wrongLevel = "wrong_level"
        /// Identical copies on several levels.
        case duplicate
        /// Different files of one name on several levels.
        case conflict
        /// On no level's disk.
        case missing
        /// A temporary file of a move in a level's reserved directory that no delivery is using.
        case stalePart = "stale_part"
        /// A file under an earlier version's temporary name, beside the contents, that no content
        /// row names and no job in flight owns: moved into `.relocator/orphans/`, never deleted.
        case legacyPart = "legacy_part"
        /// A job whose id Redis lost from the list its status calls for.
        case orphanedJob = "orphaned_job"
        /// A filename that cannot be moved safely (absolute, `..`, a symbolic link on its way).
        case unsafeFilename = "unsafe_filename"
        /// Two contents with one filename.
        case sharedFilename = "shared_filename"
        /// A level in use before whose directory lacks `.relocator/` (a bare mountpoint), another
        /// host's level that no live worker serves, or a level whose directory did not answer (at
        /// the start, or from some moment of the run on): not looked at (from then on).
        case levelUnavailable = "level_unavailable"
        /// Not on this host where the database says, and a level where it may be was not looked
        /// at (another host's whose workers did not answer, or one of this host's whose directory
        /// did not answer): nothing decided.
        case unverified
        /// Files of the content's name on levels of several hosts (not compared across hosts).
        case copiesOnHosts = "copies_on_hosts"
    }

    public var kind: Kind
    public var cid: Int64?
    public var detail: String
    /// What --fix did, nil when nothing (not asked, or nothing safe to do).
    public var fixed: String?

    public var line: String {
        let subject = cid.map { " cid=\($0)" } ?? ""
        return "\(kind.rawValue)\(subject): \(detail)" + (fixed.map { " — fixed: \($0)" } ?? "")
    }
}

/// Compares the database with the disks and Redis and, with `fix`, repairs what is safe — from
/// cron, at any moment, beside running workers:
/// - a content with a job in flight (not committed, not dead) is skipped; any other is *leased* (no worker claims its job
///   meanwhile) and *locked* (the content lock every process respects on this host: no delivery
///   is between its checks and its removal) before anything destructive, and the job, the
///   database row and the files are read again right before each step;
/// - a copy is removed only while another identical copy is present, at that moment, at the level
///   the database names (`LevelRoot.removeDuplicate` hashes both and re-checks the names);
/// - a level whose directory does not answer (a stalled disk, a network filesystem whose server is
///   gone) holds up the run for at most `lookPatience`: it is left alone from then on, with the
///   contents the database places on it, and a content not found elsewhere is unverified, never
///   missing (its lookups wait on a queue of that level's, `DiskLooks`);
/// - a temporary file in a level's `.relocator/tmp/` older than `partGrace` is removed under its
///   content's lock; a file beside the contents under an earlier version's temporary name is moved
///   into `.relocator/orphans/` only when no content row names it and its job is gone — nothing
///   is deleted for what its name looks like.
public struct Reconciler {
    public struct Settings: Sendable {
        public var directories: LevelDirectories
        public var fix: Bool
        public var algorithm: ChecksumAlgorithm = .xxh128
        /// A temporary file younger than this is left alone (a move may be about to record it).
        public var partGrace: Duration = .seconds(900)
        /// How long a lease on one content lasts at most.
        public var leaseTTL: Duration = .seconds(120)
        /// Levels whose directory is on other hosts: their workers (`--transfer-listen`) are asked
        /// before a content is called missing or misplaced (`HostInquiry`).
        public var remoteLevels: [String] = []
        /// The key the workers share (`--transfer-secret-file`), when they share one.
        public var transferSigningKey: TransferSigningKey?
        /// The CAs the workers of other hosts that speak TLS are checked against (`--transfer-tls-ca`).
        public var transferTrust: TransferTLSTrust?
        /// How long a look at a level's directory (opening it, a file's lookup, the listing of its
        /// temporary files) is waited for: past it, the level does not answer.
        public var lookPatience: Duration = .seconds(10)
        /// This host's levels whose directory did not answer before the run (`levelsNotAnswering`),
        /// with why: never opened, left alone.
        public var notAnswering: [String: String] = [:]

        public init(directories: LevelDirectories, fix: Bool) {
            self.directories = directories
            self.fix = fix
        }
    }

    let settings: Settings
    let session: any JobQueueSession
    let store: ContentStore
    /// The `worker` of the relocation row a fix of the database records.
    static let recorder = "reconcile"
    /// The levels looked at — every level but those out of service; those that do not answer
    /// stay, to be counted as not looked at — and the open directories of those that answered.
    private(set) var roots: [String: LevelRoot]
    private(set) var levels: [String]
    /// The levels whose directory did not answer within the patience, with why: left alone from
    /// then on (a look at one answers "not answering" at once while the one under way waits).
    public var notAnswering: [String: String] { silent.levels }
    private let silent: SilentLevels
    /// The lookups of each level, on a queue of their own, each waited for at most the patience.
    public let looks: DiskLooks
    let token = "reconcile-\(ProcessInfo.processInfo.hostName):\(getpid()):\(WallClock.milliseconds())"
    /// Called with each finding as it is made (the command prints it), and with progress.
    let onFinding: (Finding) -> Void
    let onProgress: (_ done: Int, _ total: Int) -> Void

    public private(set) var findings: [Finding] = []
    /// Contents left alone because a job was in flight.
    public private(set) var skipped = 0
    /// Contents left alone because the database places them on a level out of service.
    public private(set) var skippedUnavailable = 0
    /// Contents the database places on another host's level, with no file here: that host's
    /// reconcile checks them.
    public private(set) var skippedElsewhere = 0
    /// Other hosts' levels, and the run's questions to their workers (nil without such levels).
    let remoteLevels: Set<String>
    let inquiry: PeerInquiry?

    public init(settings: Settings, session: any JobQueueSession, store: ContentStore, onFinding: @escaping (Finding) -> Void = { _ in },
                onProgress: @escaping (Int, Int) -> Void = { _, _ in }) throws {
        self.settings = settings
        self.session = session
        self.store = store
        self.onFinding = onFinding
        self.onProgress = onProgress
        looks = DiskLooks(patience: settings.lookPatience)
        var roots: [String: LevelRoot] = [:]
        var notAnswering = settings.notAnswering
        for level in settings.directories.names where notAnswering[level] == nil {
            let place = settings.directories.place(of: level)!
            switch looks.lookWaiting(level, { try LevelRoot(place) }) {
            case .answered(let opened): roots[level] = try opened.get()
            case .notAnswering: notAnswering[level] = Self.silence(place.directory, settings.lookPatience, when: "as it was opened")
            }
        }
        self.roots = roots
        silent = SilentLevels(notAnswering)
        // (With those that did not answer: a content not found elsewhere may be there.)
        levels = settings.directories.names
        remoteLevels = Set(settings.remoteLevels).subtracting(settings.directories.names)
        inquiry = remoteLevels.isEmpty ? nil : PeerInquiry(session: session, signingKey: settings.transferSigningKey,
                                                          trust: settings.transferTrust, ttl: .seconds(600))
    }

    /// Why a level is left alone: its directory did not answer `when`.
    static func silence(_ directory: String, _ patience: Duration, when: String) -> String {
        "its directory \(directory) did not answer within \(patience) \(when) (a stalled disk, or a network filesystem whose server is gone)"
    }

    /// `body` on `level`'s queue of looks: nil when the level does not answer (within the
    /// patience now, or before: it is then left alone for the rest of the run).
    private func look<T: Sendable>(_ level: String, when: String, _ body: @escaping @Sendable () throws -> T) throws -> T? {
        guard notAnswering[level] == nil else { return nil }
        switch looks.lookWaiting(level, body) {
        case .answered(let result):
            return try result.get()
        case .notAnswering:
            silent.levels[level] = Self.silence(settings.directories.directory(of: level) ?? level, settings.lookPatience, when: when)
            return nil
        }
    }

    /// Content `cid`'s lock in the levels that answer, each level's taken on its queue of looks:
    /// nil (holding none) when another holder has it, or a level does not answer (left alone from
    /// then on; a lock its look takes after the patience is released at once).
    private func lockContent(_ cid: Int64) throws -> ContentLock? {
        // (No level answers: no lock, rather than a lock of none.)
        guard !answering.isEmpty else { return nil }
        return try ContentLock.tryLock(cid: cid, in: answering) { root in
            let handOff = LockHandOff()
            guard let taken = try look(root.level, when: "as content \(cid)'s lock was taken", { try handOff.deliver(ContentLock.lockOne(cid: cid, in: root)) })
            else {
                handOff.abandon()
                return nil
            }
            return taken
        }
    }

    /// The open directories of the levels that answer.
    private var answering: [LevelRoot] {
        levels.filter { notAnswering[$0] == nil }.compactMap { roots[$0] }
    }

    mutating func report(_ finding: Finding) {
        findings.append(finding)
        onFinding(finding)
    }

    public mutating func run() throws {
        // A level in use before whose directory lacks .relocator/ (a bare mountpoint) is neither
        // looked at nor changed: what the database places there is left alone.
        for level in levels where notAnswering[level] == nil {
            let root = roots[level]!
            _ = try look(level, when: "as its reserved directory was looked up") { try root.hasReservedDirectory() }
        }
        let withdrawn = try LevelPreparation.prepare(answering, session, changing: settings.fix).withdrawn
        for (level, _) in withdrawn {
            roots[level] = nil
        }
        levels = levels.filter { withdrawn[$0] == nil }
        // (Levels that stop answering later are reported as such, with the contents left alone after.)
        let silentBefore = notAnswering
        // Another host's level that no live worker serves cannot be looked at: what the database
        // places there is left alone, and what may be there is not decided.
        var unserved: [String: String] = [:]
        for level in remoteLevels.sorted() where try inquiry!.peers(serving: level).isEmpty {
            unserved[level] = "its directory is not on this host and no live worker serves it (a worker started with --transfer-listen on the host that has it)"
        }
        // Jobs first: an orphan put back is in flight again, and its content is then left alone.
        guard case .orphans(let orphans) = try session.control(.orphans(cids: try session.jobCIDs(), fix: settings.fix)) else { return }
        for orphan in orphans {
            report(Finding(kind: .orphanedJob, cid: orphan.cid, detail: "job \(orphan.id) is \(orphan.status.rawValue) but in no list for that status",
                           fixed: orphan.restored ? "put back on its list" : nil))
        }
        let contents = try store.contents()
        var byFilename: [FilenameKey: [Int64]] = [:]
        for content in contents { byFilename[FilenameKey(content.filename), default: []].append(content.cid) }
        for (filename, cids) in byFilename where cids.count > 1 {
            report(Finding(kind: .sharedFilename, cid: cids.min(), detail: "cids \(cids.sorted().map(String.init).joined(separator: ", ")) all name \(filename); give each its own file"))
        }
        // The contents left alone on each level out of service (one that stops answering during
        // the run: from then on).
        var leftAlone: [String: Int] = [:]
        for (index, content) in contents.enumerated() {
            onProgress(index, contents.count)
            if (byFilename[FilenameKey(content.filename)]?.count ?? 0) > 1 { continue }
            if withdrawn[content.level] != nil || unserved[content.level] != nil || notAnswering[content.level] != nil {
                skippedUnavailable += 1
                leftAlone[content.level, default: 0] += 1
                continue
            }
            // A job in flight owns its content's files; a dead one waits for an operator and does not.
            if let state = try session.states(cids: [content.cid])[content.cid], state.status != .committed, state.status != .dead {
                skipped += 1
                continue
            }
            do {
                try check(content)
            } catch let error as MoveError where error.kind == .unsafePath {
                // A link planted on the way while the check ran (the first lookup found none):
                // reported, nothing done, and the run goes on.
                report(Finding(kind: .unsafeFilename, cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
            }
        }
        onProgress(contents.count, contents.count)
        try staleParts()
        try legacyParts(of: contents)
        // Last: a level may stop answering as its temporary files are listed.
        let aside = withdrawn.merging(unserved, uniquingKeysWith: { a, _ in a }).merging(silentBefore, uniquingKeysWith: { a, _ in a })
        for (level, why) in aside.sorted(by: { $0.key < $1.key }) {
            let left = contents.filter { $0.level == level }.count
            report(Finding(kind: .levelUnavailable, cid: nil,
                           detail: "level '\(level)' not looked at: \(why); the \(left) contents the database places on it were left alone"))
        }
        for (level, why) in notAnswering.sorted(by: { $0.key < $1.key }) where aside[level] == nil {
            report(Finding(kind: .levelUnavailable, cid: nil,
                           detail: "level '\(level)' not looked at from some moment of the run on: \(why); the \(leftAlone[level] ?? 0) contents "
                               + "the database places on it that came after were left alone"))
        }
    }

    /// What `filename` names on each level that answered, and the levels that did not.
    private func lookups(of filename: Filename) throws -> (found: [String: LevelRoot.FileStatus], unanswered: [String]) {
        var found: [String: LevelRoot.FileStatus] = [:]
        var unanswered: [String] = []
        for level in levels {
            if let root = roots[level], let status = try look(level, when: "as \(filename) was looked up", { try root.lookup(filename) }) {
                found[level] = status
            } else {
                unanswered.append(level)
            }
        }
        return (found, unanswered)
    }

    /// Where a content's file is: the levels whose directory holds it as a regular file; nil
    /// when a level did not answer (nothing is decided then).
    private func places(of filename: Filename) throws -> [String]? {
        let (found, unanswered) = try lookups(of: filename)
        guard unanswered.isEmpty else { return nil }
        return levels.filter { if case .regularFile = found[$0] { true } else { false } }
    }

    /// The file's size on `level` (0 when it is not a file there); nil when the level did not answer.
    private func size(of filename: Filename, on level: String) throws -> Int64? {
        guard let root = roots[level], let status = try look(level, when: "as \(filename) was looked up", { try root.lookup(filename) }) else { return nil }
        if case .regularFile(let size) = status { return size }
        return 0
    }

    private mutating func check(_ content: Content) throws {
        let filename: Filename
        let looked: (found: [String: LevelRoot.FileStatus], unanswered: [String])
        do {
            filename = try Filename(content.filename)
            looked = try lookups(of: filename)
        } catch let error as Filename.Invalid {
            return report(Finding(kind: .unsafeFilename, cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
        } catch let error as MoveError where error.kind == .unsafePath {
            return report(Finding(kind: .unsafeFilename, cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
        }
        let found = levels.filter { if case .regularFile = looked.found[$0] { true } else { false } }
        if found == [content.level] { return }
        // (Other hosts' levels first: a content their host holds stays theirs to check.)
        if !remoteLevels.isEmpty, try !decideAcrossHosts(content, filename: filename, found: found, silentHere: looked.unanswered) { return }
        // A level that did not answer may hold the file (or a copy): nothing is decided.
        if !looked.unanswered.isEmpty { return reportUnverified(content, filename: filename, found: found, silentHere: looked.unanswered) }
        switch found.count {
        case 0:
            // Something else at the content's path (a directory, a FIFO…) is named as what it is.
            let others = levels.compactMap { level -> String? in
                guard case .notRegularFile(let what) = looked.found[level] else { return nil }
                return "\(what), not a file, on \(level) (\(settings.directories.directory(of: level)!)/\(filename))"
            }
            let lookedIn = levels.map { settings.directories.place(of: $0)!.description }.joined(separator: ", ")
            let detail = others.isEmpty
                ? "\(filename) is on no level's disk (looked in \(lookedIn)); the database says \(content.level)"
                : "\(filename) is \(others.joined(separator: " and ")); no level holds it as a file; the database says \(content.level)"
            report(Finding(kind: .missing, cid: content.cid,
                           detail: detail + "; if it is gone for good, `relocator contents remove --cid \(content.cid)` forgets the content"))
        case 1:
            var finding = Finding(kind: .wrongLevel, cid: content.cid, detail: "the database says \(content.level), \(filename) is on \(found[0])")
            if settings.fix {
                finding.fixed = try leased(content.cid) { _ -> String? in
                    // Read again under the lease: a move may have finished since.
                    guard let now = try store.content(cid: content.cid), FilenameKey.same(now.filename, content.filename) else { return nil }
                    guard let place = try places(of: filename), place.count == 1, place[0] != now.level,
                          let bytes = try size(of: filename, on: place[0]) else { return nil }
                    // Not while a job of the content is in flight: its move decides where the file goes.
                    guard try Commit.recordLevel(cid: content.cid, from: now.level, to: place[0], bytes: bytes,
                                                 by: Self.recorder, store: SQLContentStore(database: store.database), queue: session)
                    else { return nil }
                    return "database set to \(place[0])"
                }
            }
            report(finding)
        default:
            let sums = try found.map { try roots[$0]!.checksum(of: filename, algorithm: settings.algorithm) }
            guard Set(sums.map { $0?.description ?? "" }).count == 1 else {
                return report(Finding(kind: .conflict, cid: content.cid,
                                      detail: "\(filename) is on \(found.joined(separator: " and ")) with different contents; left untouched"))
            }
            var finding = Finding(kind: .duplicate, cid: content.cid,
                                  detail: "identical copies of \(filename) on \(found.joined(separator: " and ")); the database says \(content.level)")
            if settings.fix {
                finding.fixed = try leased(content.cid) { _ -> String? in
                    guard var now = try store.content(cid: content.cid), FilenameKey.same(now.filename, content.filename) else { return nil }
                    guard let place = try places(of: filename), place.count > 1 else { return nil }
                    if !place.contains(now.level) {
                        // No copy where the database says: it names one of the copies first.
                        guard let bytes = try size(of: filename, on: place[0]),
                              try Commit.recordLevel(cid: content.cid, from: now.level, to: place[0],
                                                     bytes: bytes, by: Self.recorder,
                                                     store: SQLContentStore(database: store.database), queue: session)
                        else { return nil }
                        now.level = place[0]
                    }
                    let keeper = roots[now.level]!
                    var removed: [String] = []
                    for level in place where level != now.level {
                        try roots[level]!.removeDuplicate(filename, keeping: keeper, algorithm: settings.algorithm)
                        removed.append(level)
                    }
                    return "kept the copy on \(now.level), removed \(removed.joined(separator: ", "))"
                }
            }
            report(finding)
        }
    }

    /// A content not in place while levels of this host did not answer (`silentHere`): nothing decided.
    private mutating func reportUnverified(_ content: Content, filename: Filename, found: [String], silentHere: [String]) {
        let here = found.isEmpty ? "no level that answered" : found.joined(separator: " and ")
        let why = silentHere.map { "\($0): \(notAnswering[$0] ?? "it did not answer")" }.joined(separator: "; ")
        report(Finding(kind: .unverified, cid: content.cid,
                       detail: "\(filename) is on \(here), the database says \(content.level), and levels of this host were not looked at (\(why)); nothing decided"))
    }

    /// Decides, with the other hosts' workers, what this host alone cannot: false when that is
    /// done (reported, or nothing to report), true when the content is to be checked as on one
    /// host (the other hosts hold no copy). With levels of this host that did not answer
    /// (`silentHere`), a content on no host is unverified, not missing.
    private mutating func decideAcrossHosts(_ content: Content, filename: Filename, found: [String], silentHere: [String]) throws -> Bool {
        let remote = HostsVerdict.needsAsking(database: content.level, local: found, remoteLevels: remoteLevels)
            ? try inquiry!.look(cid: content.cid, filename: content.filename, levels: remoteLevels.sorted()) : nil
        let hosts = inquiry!.answeredBy
        let here = found.isEmpty ? "no level of this host (\(levels.joined(separator: ", ")))" : found.joined(separator: " and ") + " on this host"
        switch HostsVerdict.decide(database: content.level, local: found, remoteLevels: remoteLevels, remote: remote) {
        case .inPlace:
            return false
        case .elsewhere:
            skippedElsewhere += 1
            return false
        case .local:
            return true
        case .missing where !silentHere.isEmpty:
            reportUnverified(content, filename: filename, found: found, silentHere: silentHere)
        case .missing:
            let asked = remoteLevels.sorted().map { "\($0) (\(hosts[$0] ?? "another host"))" }.joined(separator: ", ")
            report(Finding(kind: .missing, cid: content.cid,
                           detail: "\(filename) is on \(here), nor on the other hosts' levels \(asked); the database says \(content.level); "
                               + "if it is gone for good, `relocator contents remove --cid \(content.cid)` forgets the content"))
        case .unverified(let unlooked):
            let why = unlooked.map { "\($0): \(remote?.unanswered[$0] ?? "not looked at")" }.joined(separator: "; ")
            report(Finding(kind: .unverified, cid: content.cid,
                           detail: "\(filename) is on \(here), the database says \(content.level), and levels of other hosts were not looked at (\(why)); nothing decided"))
        case .copies(let local, _):
            report(Finding(kind: .copiesOnHosts, cid: content.cid,
                           detail: "\(filename) is on \(local.isEmpty ? "no level of this host" : local.joined(separator: " and ") + " on this host") and on "
                               + "\(remote!.foundText(hosts: hosts)); the database says \(content.level); not compared across hosts, left untouched"))
        case .wrongLevelElsewhere(let level):
            var finding = Finding(kind: .wrongLevel, cid: content.cid,
                                  detail: "the database says \(content.level), \(filename) is on \(level) (\(hosts[level] ?? "another host"))")
            if settings.fix {
                finding.fixed = try leased(content.cid) { _ -> String? in
                    // Asked again under the lease (no worker takes the content's job meanwhile),
                    // and only acted on while the lease surely still holds (peers slow to answer
                    // could outlast it).
                    let since = ContinuousClock.now
                    guard let now = try store.content(cid: content.cid), now.filename == content.filename,
                          try places(of: filename)?.isEmpty == true else { return nil }
                    let again = try inquiry!.look(cid: content.cid, filename: content.filename, levels: remoteLevels.sorted())
                    guard ContinuousClock.now - since < settings.leaseTTL / 2 else { return nil }
                    guard HostsVerdict.decide(database: now.level, local: [], remoteLevels: remoteLevels, remote: again) == .wrongLevelElsewhere(level),
                          let bytes = again.found[level] else { return nil }
                    guard try Commit.recordLevel(cid: content.cid, from: now.level, to: level, bytes: bytes, by: Self.recorder,
                                                 store: SQLContentStore(database: store.database), queue: session)
                    else { return nil }
                    return "database set to \(level)"
                }
            }
            report(finding)
        }
        return false
    }

    /// Runs `body` while holding the content — its lease in Redis (no worker claims its job) and
    /// its lock on this host (no delivery is under way) —; nil (nothing done) when a job is in
    /// flight or another process holds the lock.
    private func leased(_ cid: Int64, _ body: (ContentLock) throws -> String?) throws -> String? {
        guard try session.control(.lease(cid: cid, token: token, ttl: settings.leaseTTL)) == .flag(true) else { return nil }
        defer {
            do {
                _ = try session.control(.unlease(cid: cid, token: token))
            } catch {
                // The lease expires by itself.
            }
        }
        // (The levels that answer: one that does not is left alone, and a fix needs every level's
        // answer, read again under the lock.)
        guard let lock = try lockContent(cid) else { return nil }
        defer { lock.release() }
        return try body(lock)
    }

    /// Temporary files in the levels' reserved directories older than the grace period: removed
    /// under their content's lock (a temporary file is used only by the delivery that made it,
    /// which holds the lock as long as it lives).
    private mutating func staleParts() throws {
        let cutoff = Int64(Date().timeIntervalSince1970) - settings.partGrace.milliseconds / 1000
        for level in levels where notAnswering[level] == nil {
            let root = roots[level]!
            guard let parts = try look(level, when: "as its temporary files were listed", { try root.temporaryFiles() }) else { continue }
            for (part, modified) in parts where modified < cutoff {
                // A level that stopped answering meanwhile (as a lock was taken) is left alone.
                guard notAnswering[level] == nil else { break }
                var finding = Finding(kind: .stalePart, cid: part.cid, detail: "\(level)/\(part.relativePath) belongs to no move in flight")
                if settings.fix {
                    let silentBefore = notAnswering.count
                    if let lock = try lockContent(part.cid) {
                        defer { lock.release() }
                        finding.fixed = try root.removeTemporary(part, holding: lock) ? "removed" : "already gone"
                    } else {
                        finding.detail += notAnswering.count > silentBefore ? "; left alone: a level did not answer as the content's lock was taken"
                            : "; left alone: a delivery of the content holds its lock"
                    }
                }
                report(finding)
            }
        }
    }

    /// Files under an earlier version's temporary name beside the contents: moved aside into
    /// `.relocator/orphans/` when no content row names them — neither their path nor, in another
    /// directory, their file name (a directory renamed since) —, no job in flight has their
    /// generation, and they are older than the grace period. The row and the job are read again
    /// under the content's lock right before the move.
    private mutating func legacyParts(of contents: [Content]) throws {
        let cutoff = Int64(Date().timeIntervalSince1970) - settings.partGrace.milliseconds / 1000
        let filenames = Set(contents.map(\.filename))
        var byFileName: [Substring: [Int64]] = [:]
        for content in contents { byFileName[LegacyPartName.fileName(of: content.filename), default: []].append(content.cid) }
        for level in levels where notAnswering[level] == nil {
            let root = roots[level]!
            // A directory at a time, each waited for at most the patience: a level that stops
            // answering halfway is left alone (nothing it holds is moved aside).
            let walk = root.legacyPartWalk()
            while let more = try look(level, when: "as its directories were walked", { try walk.step() }), more {}
            guard notAnswering[level] == nil else { continue }
            for part in walk.parts where part.modified < cutoff {
                guard notAnswering[level] == nil else { break }
                if filenames.contains(part.relativePath) { continue }  // a content's file, whatever its name looks like
                let named = byFileName[LegacyPartName.fileName(of: part.relativePath)] ?? []
                if try inFlight(part) { continue }
                var finding = Finding(kind: .legacyPart, cid: part.name.cid,
                                      detail: "\(level)/\(part.relativePath) is an earlier version's temporary file that no content names")
                if !named.isEmpty {
                    finding.detail = "\(level)/\(part.relativePath) looks like an earlier version's temporary file, but cid "
                        + "\(named.sorted().map(String.init).joined(separator: ", ")) has a file of that name in another directory "
                        + "(renamed since?); left alone"
                } else if settings.fix {
                    // New workers never use such a name: the content's lock is enough (its job, if
                    // any, may be in flight), and the rows and the job are read again under it.
                    let silentBefore = notAnswering.count
                    if let lock = try lockContent(part.name.cid) {
                        defer { lock.release() }
                        if try mayMoveAside(part) {
                            finding.fixed = try root.moveAside(part, holding: lock).map { "moved to \(level)/\($0)" } ?? "already gone"
                        }
                    } else {
                        finding.detail += notAnswering.count > silentBefore ? "; left alone: a level did not answer as the content's lock was taken"
                            : "; left alone: a delivery of cid \(part.name.cid) holds its lock"
                    }
                }
                report(finding)
            }
        }
    }

    /// True when the job of the part's content is in flight with the part's generation.
    private func inFlight(_ part: LevelRoot.LegacyPart) throws -> Bool {
        guard let state = try session.states(cids: [part.name.cid])[part.name.cid] else { return false }
        return state.gen == part.name.gen && state.status != .committed && state.status != .dead
    }

    /// Right before a legacy part is moved aside (under its content's lock): no row names its path,
    /// the content its name carries has no file of that name elsewhere, and no job of its
    /// generation is in flight.
    private func mayMoveAside(_ part: LevelRoot.LegacyPart) throws -> Bool {
        if try store.content(filename: part.relativePath) != nil { return false }
        if let owner = try store.content(cid: part.name.cid), LegacyPartName.mayBe(contentNamed: owner.filename, at: part.relativePath) { return false }
        return try !inFlight(part)
    }
}

/// The levels a reconcile run leaves alone because their directory did not answer, with why (a
/// reference: looks made inside a fix's closure add to it).
private final class SilentLevels {
    var levels: [String: String]

    init(_ levels: [String: String]) {
        self.levels = levels
    }
}

/// A content lock's descriptor handed from a look to the run: once the run has given up on the
/// look (its level did not answer within the patience), a lock the look takes after is released
/// at once, and one it took already is released by the run.
private final class LockHandOff: Sendable {
    private let state = Mutex<(taken: FileDescriptor?, abandoned: Bool)>((nil, false))

    /// Called by the look with what it took: passed on, unless the run gave up meanwhile.
    func deliver(_ taken: FileDescriptor?) -> FileDescriptor? {
        state.withLock { state in
            guard let taken else { return nil }
            if state.abandoned {
                try? taken.close()
                return nil
            }
            state.taken = taken
            return taken
        }
    }

    /// The run gave up on the look.
    func abandon() {
        state.withLock { state in
            state.abandoned = true
            try? state.taken?.close()
            state.taken = nil
        }
    }
}
