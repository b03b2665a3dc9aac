import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore
import SQLStore

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
        /// A temporary file of a move no job owns any more.
        case stalePart = "stale_part"
        /// A job whose id Redis lost from the list its status calls for.
        case orphanedJob = "orphaned_job"
        /// A filename that cannot be moved safely (absolute, `..`, a symbolic link on its way).
        case unsafeFilename = "unsafe_filename"
        /// Two contents with one filename.
        case sharedFilename = "shared_filename"
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
///   meanwhile) before anything destructive, and the job, the database row and the files are read
///   again right before each step;
/// - a copy is removed only while another identical copy is present, at that moment, at the level
///   the database names (`LevelRoot.removeDuplicate` hashes both and re-checks the names);
/// - a temporary `.part` file is removed only when its job is gone and the file is older than
///   `partGrace`.
public struct Reconciler {
    public struct Settings: Sendable {
        public var directories: LevelDirectories
        public var fix: Bool
        public var algorithm: ChecksumAlgorithm = .xxh128
        /// A temporary file younger than this is left alone (a move may be about to record it).
        public var partGrace: Duration = .seconds(900)
        /// How long a lease on one content lasts at most.
        public var leaseTTL: Duration = .seconds(120)

        public init(directories: LevelDirectories, fix: Bool) {
            self.directories = directories
            self.fix = fix
        }
    }

    let settings: Settings
    let session: any QueueSession
    let store: ContentStore
    let roots: [String: LevelRoot]
    let token = "reconcile-\(ProcessInfo.processInfo.hostName):\(getpid()):\(JobQueue.nowMilliseconds())"
    /// Called with each finding as it is made (the command prints it), and with progress.
    let onFinding: (Finding) -> Void
    let onProgress: (_ done: Int, _ total: Int) -> Void

    public private(set) var findings: [Finding] = []
    /// Contents left alone because a job was in flight.
    public private(set) var skipped = 0

    public init(settings: Settings, session: any QueueSession, store: ContentStore, onFinding: @escaping (Finding) -> Void = { _ in },
                onProgress: @escaping (Int, Int) -> Void = { _, _ in }) throws {
        self.settings = settings
        self.session = session
        self.store = store
        self.onFinding = onFinding
        self.onProgress = onProgress
        var roots: [String: LevelRoot] = [:]
        for level in settings.directories.names { roots[level] = try LevelRoot(settings.directories.place(of: level)!) }
        self.roots = roots
    }

    mutating func report(_ finding: Finding) {
        findings.append(finding)
        onFinding(finding)
    }

    public mutating func run() throws {
        // Jobs first: an orphan put back is in flight again, and its content is then left alone.
        for orphan in try session.orphans(cids: try session.jobCIDs(), fix: settings.fix) {
            report(Finding(kind: .orphanedJob, cid: orphan.cid, detail: "job \(orphan.id) is \(orphan.status.rawValue) but in no list for that status",
                           fixed: orphan.restored ? "put back on its list" : nil))
        }
        let contents = try store.contents()
        var byFilename: [String: [Int64]] = [:]
        for content in contents { byFilename[content.filename, default: []].append(content.cid) }
        for (filename, cids) in byFilename where cids.count > 1 {
            report(Finding(kind: .sharedFilename, cid: cids.min(), detail: "cids \(cids.sorted().map(String.init).joined(separator: ", ")) all name \(filename); give each its own file"))
        }
        for (index, content) in contents.enumerated() {
            onProgress(index, contents.count)
            if (byFilename[content.filename]?.count ?? 0) > 1 { continue }
            // A job in flight owns its content's files; a dead one waits for an operator and does not.
            if let state = try session.jobState(cid: content.cid), state.status != .committed, state.status != .dead {
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
    }

    /// Where a content's file is: the levels whose directory holds it as a regular file.
    private func places(of filename: Filename) throws -> [String] {
        try settings.directories.names.filter { level in
            if case .regularFile = try roots[level]!.lookup(filename) { return true }
            return false
        }
    }

    private mutating func check(_ content: Content) throws {
        let filename: Filename
        let found: [String]
        do {
            filename = try Filename(content.filename)
            found = try places(of: filename)
        } catch let error as Filename.Invalid {
            return report(Finding(kind: .unsafeFilename, cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
        } catch let error as MoveError where error.kind == .unsafePath {
            return report(Finding(kind: .unsafeFilename, cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
        }
        if found == [content.level] { return }
        switch found.count {
        case 0:
            report(Finding(kind: .missing, cid: content.cid,
                           detail: "\(filename) is on no level's disk (looked in \(settings.directories.names.map { settings.directories.place(of: $0)!.description }.joined(separator: ", "))); the database says \(content.level)"))
        case 1:
            var finding = Finding(kind: .wrongLevel, cid: content.cid, detail: "the database says \(content.level), \(filename) is on \(found[0])")
            if settings.fix {
                finding.fixed = try leased(content.cid) { () -> String? in
                    // Read again under the lease: a move may have finished since.
                    guard let now = try store.content(cid: content.cid), now.filename == content.filename else { return nil }
                    let place = try places(of: filename)
                    guard place.count == 1, place[0] != now.level else { return nil }
                    try store.setLevel(cid: content.cid, level: place[0])
                    try session.levelChanged(cid: content.cid)
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
                finding.fixed = try leased(content.cid) { () -> String? in
                    guard var now = try store.content(cid: content.cid), now.filename == content.filename else { return nil }
                    let place = try places(of: filename)
                    guard place.count > 1 else { return nil }
                    if !place.contains(now.level) {
                        // No copy where the database says: it names one of the copies first.
                        try store.setLevel(cid: content.cid, level: place[0])
                        try session.levelChanged(cid: content.cid)
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

    /// Runs `body` while holding the content; nil (nothing done) when a job is in flight.
    private func leased(_ cid: Int64, _ body: () throws -> String?) throws -> String? {
        guard try session.lease(cid: cid, token: token, ttl: settings.leaseTTL) else { return nil }
        defer {
            do {
                try session.unlease(cid: cid, token: token)
            } catch {
                // The lease expires by itself.
            }
        }
        return try body()
    }

    /// `.part` files whose job is gone (no job, another generation, or committed or dead) and that
    /// are older than the grace period.
    private mutating func staleParts() throws {
        let cutoff = Date().addingTimeInterval(-Double(settings.partGrace.milliseconds) / 1000)
        for level in settings.directories.names {
            let root = roots[level]!
            for part in try root.partFiles() {
                var info = stat()
                guard lstat(part.path, &info) == 0 else { continue }
                let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec))
                let state = try session.jobState(cid: part.name.cid)
                if let state, state.gen == part.name.gen, state.status != .committed, state.status != .dead { continue }
                guard modified < cutoff else { continue }
                var finding = Finding(kind: .stalePart, cid: part.name.cid, detail: "\(level)/\(part.relativePath) belongs to no move in flight")
                if settings.fix {
                    // Read the job again right before the unlink.
                    let again = try session.jobState(cid: part.name.cid)
                    if again == nil || again!.gen != part.name.gen || again!.status == .committed || again!.status == .dead {
                        do {
                            finding.fixed = try root.removePart(part.relativePath) ? "removed" : "already gone"
                        } catch let error as MoveError where error.kind == .unsafePath {
                            // Its directory was swapped for a link since it was listed: not entered.
                            finding.detail += "; left alone: \(error)"
                        }
                    }
                }
                report(finding)
            }
        }
    }
}
