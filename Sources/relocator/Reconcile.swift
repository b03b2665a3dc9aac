import ArgumentParser
import FileMover
import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import SQLStore

extension Relocator {
    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the database with the disks and Redis; with --fix, repair what is safe.",
            discussion: """
                Finds: a content whose file sits on another level than the database says (wrong_level), a file on \
                two levels (duplicate when the copies are identical, conflict when they differ), a file on no level \
                (missing), a temporary .part file no running move owns (stale_part), and a job whose id Redis lost \
                from the list its status calls for (orphaned_job). --fix sets the database to where the file really \
                is, removes verified duplicates and stale .part files, and puts orphaned jobs back on their lists; \
                conflicts and missing files are only reported. Contents with a job in flight are left alone. \
                Exit status: 0 when nothing is left to do, 2 when findings remain that need an operator.
                """)

        @OptionGroup var runtime: RuntimeOptions

        @Option(help: "level=directory pairs (default: $RELOCATOR_LEVELS).")
        var levelDirs: String?

        @Flag(help: "Repair what is safe to repair.")
        var fix = false

        func run() throws {
            let directories = try runtime.levelDirectories(flag: levelDirs)
            let redis = RedisConnection(url: try runtime.redis())
            let queue = JobQueue(keys: try runtime.keys())
            let db = try runtime.database.open()
            defer { db.close() }
            var reconciler = Reconciler(directories: directories, redis: redis, queue: queue,
                                        store: ContentStore(database: db), fix: fix)
            try reconciler.run()
            let open = reconciler.findings.filter { $0.fixed == nil }.count
            print("\(reconciler.findings.count) findings, \(reconciler.findings.count - open) fixed, \(open) need attention")
            if open > 0 { throw ExitCode(2) }
        }
    }
}

/// One thing reconcile found.
struct Finding {
    var kind: String
    var cid: Int64?
    var detail: String
    var fixed: String?

    var line: String {
        let subject = cid.map { " cid=\($0)" } ?? ""
        return "\(kind)\(subject): \(detail)" + (fixed.map { " — fixed: \($0)" } ?? "")
    }
}

struct Reconciler {
    let directories: LevelDirectories
    let redis: RedisConnection
    let queue: JobQueue
    let store: ContentStore
    let fix: Bool
    let mover = FileMover()
    private(set) var findings: [Finding] = []

    init(directories: LevelDirectories, redis: RedisConnection, queue: JobQueue, store: ContentStore, fix: Bool) {
        self.directories = directories
        self.redis = redis
        self.queue = queue
        self.store = store
        self.fix = fix
    }

    mutating func report(_ finding: Finding) {
        findings.append(finding)
        print(finding.line)
    }

    mutating func run() throws {
        // Jobs first: an orphan put back is in flight again, and its content is then left alone.
        let jobCIDs = try queue.jobCIDs(on: redis)
        for orphan in try queue.orphans(cids: jobCIDs, fix: fix, on: redis) {
            report(Finding(kind: "orphaned_job", cid: orphan.cid, detail: "job \(orphan.id) is \(orphan.status) but in no list for that status",
                           fixed: fix ? "put back on its list" : nil))
        }
        let statuses = try jobStatuses(jobCIDs)
        let inFlight: Set<JobStatus> = [.queued, .moving, .done, .retrying]
        for content in try store.contents() {
            if let status = statuses[content.cid]?.status, inFlight.contains(status) { continue }
            try check(content)
        }
        try staleParts(statuses)
    }

    private func jobStatuses(_ cids: [Int64]) throws -> [Int64: (status: JobStatus, gen: Int64)] {
        var result: [Int64: (JobStatus, Int64)] = [:]
        for start in stride(from: 0, to: cids.count, by: 1000) {
            let batch = Array(cids[start..<min(start + 1000, cids.count)])
            let replies = try redis.pipeline(batch.map { RedisCommand("HMGET", queue.keys.job($0), "status", "gen") })
            for (cid, reply) in zip(batch, replies) {
                guard let fields = reply.array, fields.count == 2, let status = fields[0].string.flatMap(JobStatus.init(rawValue:)),
                      let gen = fields[1].string.flatMap(Int64.init) else { continue }
                result[cid] = (status, gen)
            }
        }
        return result
    }

    private mutating func check(_ content: Content) throws {
        let filename: Filename
        do {
            filename = try Filename(content.filename)
        } catch {
            return report(Finding(kind: "invalid_filename", cid: content.cid, detail: "'\(content.filename.prefix(200))': \(error)"))
        }
        let places = directories.names.filter { level in
            var info = stat()
            return lstat(directories.directory(of: level)! + "/" + filename.value, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
        switch places.count {
        case 0:
            report(Finding(kind: "missing", cid: content.cid, detail: "\(filename) is on no level's disk (database says \(content.level))"))
        case 1 where places[0] == content.level:
            return
        case 1:
            var finding = Finding(kind: "wrong_level", cid: content.cid,
                                  detail: "database says \(content.level), \(filename) is on \(places[0])")
            if fix {
                try store.setLevel(cid: content.cid, level: places[0])
                finding.fixed = "database set to \(places[0])"
            }
            report(finding)
        default:
            let sums = try places.map { try mover.checksum(of: directories.directory(of: $0)! + "/" + filename.value) }
            guard Set(sums).count == 1 else {
                return report(Finding(kind: "conflict", cid: content.cid,
                                      detail: "\(filename) is on \(places.joined(separator: " and ")) with different contents; left untouched"))
            }
            let keep = places.contains(content.level) ? content.level : places[0]
            let extra = places.filter { $0 != keep }
            var finding = Finding(kind: "duplicate", cid: content.cid,
                                  detail: "identical copies of \(filename) on \(places.joined(separator: " and ")); database says \(content.level)")
            if fix {
                for level in extra { try mover.removeVerifiedDuplicate(directories.directory(of: level)! + "/" + filename.value) }
                if keep != content.level { try store.setLevel(cid: content.cid, level: keep) }
                finding.fixed = "kept the copy on \(keep), removed \(extra.joined(separator: ", "))"
            }
            report(finding)
        }
    }

    /// `.<name>.relocator-<cid>-<gen>.part` files that no move in flight owns.
    private mutating func staleParts(_ statuses: [Int64: (status: JobStatus, gen: Int64)]) throws {
        for level in directories.names {
            let root = directories.directory(of: level)!
            guard let walker = FileManager.default.enumerator(atPath: root) else { continue }
            while let relative = walker.nextObject() as? String {
                let name = (relative as NSString).lastPathComponent
                guard name.hasPrefix("."), name.hasSuffix(".part"), let marker = name.range(of: ".relocator-", options: .backwards) else { continue }
                let tag = name[marker.upperBound...].dropLast(".part".count).split(separator: "-")
                guard tag.count == 2, let cid = Int64(tag[0]), let gen = Int64(tag[1]) else { continue }
                if let job = statuses[cid], job.status == .moving, job.gen == gen { continue }
                var finding = Finding(kind: "stale_part", cid: cid, detail: "\(root)/\(relative) belongs to no move in flight")
                if fix {
                    if unlink(root + "/" + relative) == 0 || errno == ENOENT { finding.fixed = "removed" }
                }
                report(finding)
            }
        }
    }
}
