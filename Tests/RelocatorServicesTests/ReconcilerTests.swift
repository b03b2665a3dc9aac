import FileMover
import Foundation
import JobQueue
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import SQLStore
import Testing
import TestSupport

/// Reconcile on real directories, a SQLite file and the memory queue: no server, no root.
@Suite struct ReconcilerTests {
    final class Site: @unchecked Sendable {
        let root: TemporaryDirectory
        let database: CommitterTests.Database
        let queue = MemoryQueue()
        let directories: LevelDirectories

        init(contents: [(Int64, String, String)]) throws {
            let root = try TemporaryDirectory("relocator-reconcile")
            self.root = root
            database = try CommitterTests.Database(contents: contents)
            directories = LevelDirectories(["gold", "silver", "bronze"].map { ($0, root.path + "/" + $0) })
            for level in directories.names { try FileManager.default.createDirectory(atPath: directories.directory(of: level)!, withIntermediateDirectories: true) }
        }

        func remove() {
            root.remove()
            database.directory.remove()
        }

        func path(_ level: String, _ name: String) -> String { directories.directory(of: level)! + "/" + name }

        func run(fix: Bool) throws -> [Finding] {
            try run(fix: fix, directories: directories).findings
        }

        /// `beforeRun`: called once the reconciler has opened the levels, before its run.
        /// `onProgress`: the reconciler's, called before each content.
        func run(fix: Bool, directories: LevelDirectories, _ adjust: (inout Reconciler.Settings) -> Void = { _ in },
                 beforeRun: () -> Void = {}, onProgress: @escaping (Int, Int) -> Void = { _, _ in }) throws -> Reconciler {
            let db = try database.open()
            defer { db.close() }
            var settings = Reconciler.Settings(directories: directories, fix: fix)
            settings.partGrace = .seconds(60)
            adjust(&settings)
            var reconciler = try Reconciler(settings: settings, session: queue, store: ContentStore(database: db), onProgress: onProgress)
            beforeRun()
            try reconciler.run()
            return reconciler
        }
    }

    /// The site's silver served through a FUSE passthrough (`FuseLevel`), and the level directories
    /// with it there. `holding`: the access that waits while the hold file exists (`hold()` makes
    /// it); with none, `hang()` stops the level. A watchdog lets the level answer after ten
    /// minutes: a build without the bounds fails on what it finds then, rather than hanging.
    final class FuseSilver: @unchecked Sendable {
        enum Held { case nothing, lockFileOpen, rootListing }
        let level: FuseLevel
        let directories: LevelDirectories
        private let holdFile: String
        private let watchdog: DispatchWorkItem

        init(_ site: Site, holding held: Held = .nothing) throws {
            let backing = site.directories.directory(of: "silver")!, holdFile = site.root.path + "/hold-silver"
            let level: FuseLevel
            switch held {
            case .nothing: level = try FuseLevel(serving: backing)
            case .lockFileOpen: level = try FuseLevel(serving: backing, holdingLockFileOpenWhile: holdFile)
            case .rootListing: level = try FuseLevel(serving: backing, holdingRootListingWhile: holdFile)
            }
            self.level = level
            self.holdFile = holdFile
            directories = LevelDirectories(["gold", "silver", "bronze"].map { ($0, $0 == "silver" ? level.path : site.directories.directory(of: $0)!) })
            watchdog = DispatchWorkItem {
                unlink(holdFile)
                level.answer()
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + 600, execute: watchdog)
        }

        var path: String { level.path }
        func hang() { level.hang() }
        func answer() { level.answer() }
        func hold() { FileManager.default.createFile(atPath: holdFile, contents: nil) }
        func release() { unlink(holdFile) }

        func remove() {
            watchdog.cancel()
            release()
            level.remove()
        }
    }

    /// A level whose directory stops answering (a FUSE level whose daemon is stopped, as a hard
    /// NFS mount whose server is gone) holds up the run for at most the patience, whether it was
    /// silent before the run (`levelsNotAnswering`, as the command looks), when the run opens it,
    /// once the run has opened it, or while the run looks at the contents: it is left alone with
    /// the contents the database places on it (from then on), a content not in place is
    /// unverified (never missing, never fixed: the level may hold it), and the run goes on to the
    /// levels' temporary files and ends.
    @Test func aLevelWhoseDirectoryDoesNotAnswerIsLeftAloneAndTheRunEnds() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(contents: [(1, "here.bin", "gold"), (2, "gone.bin", "gold"), (3, "kept.bin", "silver"), (4, "moved.bin", "gold"),
                                       (5, "bronze.bin", "gold")])
        defer { site.remove() }
        try TestFiles.make(site.path("gold", "here.bin"), bytes: 100)
        try TestFiles.make(site.path("silver", "kept.bin"), bytes: 100)
        try TestFiles.make(site.path("silver", "moved.bin"), bytes: 100)
        try TestFiles.make(site.path("bronze", "bronze.bin"), bytes: 100)
        try FileManager.default.createDirectory(atPath: site.path("silver", ".relocator"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: site.path("gold", ".relocator/tmp"), withIntermediateDirectories: true)
        let stale = site.path("gold", ".relocator/tmp/9-1.part")
        try TestFiles.make(stale, bytes: 10)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale)
        let silver = try FuseSilver(site)
        defer { silver.remove() }
        let directories = silver.directories
        silver.hang()
        // (A patience the levels that answer keep well within on a loaded machine.)
        let patience = Duration.seconds(3)
        func expectLeftAlone(_ reconciler: Reconciler, when: String, from: String = "not looked at: ", left: String = "") throws {
            let found = reconciler.findings
            #expect(Set(found.map(\.kind)) == [.unverified, .stalePart, .levelUnavailable], "\(found.map(\.line))")
            let unverified = found.filter { $0.kind == .unverified }
            #expect(unverified.compactMap(\.cid).sorted() == [2, 4, 5], "\(found.map(\.line))")
            #expect(unverified.allSatisfy { $0.detail.contains("levels of this host were not looked at (silver: its directory \(silver.path) did not answer within 3.0 seconds") },
                    "\(unverified.map(\.detail))")
            let unavailable = try #require(found.first { $0.kind == .levelUnavailable })
            #expect(unavailable.detail.hasPrefix("level 'silver' \(from)its directory \(silver.path) did not answer within 3.0 seconds \(when)"),
                    "\(unavailable.detail)")
            #expect(unavailable.detail.hasSuffix("the 1 contents the database places on it \(left)were left alone"), "\(unavailable.detail)")
            #expect(reconciler.skippedUnavailable == 1)
            #expect(found.filter { $0.kind != .stalePart }.allSatisfy { $0.fixed == nil })
            #expect(try site.database.level(4) == "gold" && site.database.level(5) == "gold")
        }
        // Silent before the run, as the command finds it.
        let silent = levelsNotAnswering(directories, within: patience)
        #expect(Array(silent.keys) == ["silver"])
        try expectLeftAlone(try site.run(fix: false, directories: directories) {
            $0.lookPatience = patience
            $0.notAnswering = silent
        }, when: "at the start")
        // Stopped once the run had begun: its directory does not answer when it is opened.
        try expectLeftAlone(try site.run(fix: false, directories: directories) { $0.lookPatience = patience }, when: "as it was opened")
        // Stopped while the run looks at the contents (before the second): left alone from then on.
        silver.answer()
        let during = try site.run(fix: false, directories: directories, { $0.lookPatience = patience },
                                  onProgress: { done, _ in if done == 1 { silver.hang() } })
        try expectLeftAlone(during, when: "as gone.bin was looked up", from: "not looked at from some moment of the run on: ", left: "that came after ")
        // Stopped once the run had opened it: it does not answer the run's first look.
        silver.answer()
        let fixed = try site.run(fix: true, directories: directories, { $0.lookPatience = patience }, beforeRun: { silver.hang() })
        try expectLeftAlone(fixed, when: "as its reserved directory was looked up")
        #expect(fixed.findings.first { $0.kind == .stalePart }?.fixed == "removed" && !TestFiles.exists(stale))
        silver.answer()
        // Once it answers, the level is looked at again: the copies there are found.
        let after = try site.run(fix: false, directories: directories).findings
        #expect(after.map { "\($0.cid ?? 0) \($0.kind.rawValue)" } == ["2 missing", "4 wrong_level", "5 wrong_level"], "\(after.map(\.line))")
    }

    /// A level that stops answering right as a content's lock is taken for a fix (its lock file's
    /// open waits): that fix is not made, the level is left alone from then on, the run ends, and
    /// the lock the look takes once the level answers is released at once.
    @Test func aLevelThatStopsAnsweringAsAContentsLockIsTakenIsLeftAloneAndTheLockNotKept() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(contents: [(1, "a.bin", "gold"), (2, "b.bin", "gold"), (3, "c.bin", "silver")])
        defer { site.remove() }
        try TestFiles.make(site.path("bronze", "a.bin"), bytes: 100)
        try TestFiles.make(site.path("bronze", "b.bin"), bytes: 100)
        try TestFiles.make(site.path("silver", "c.bin"), bytes: 100)
        let silver = try FuseSilver(site, holding: .lockFileOpen)
        defer { silver.remove() }
        // Content 1 is fixed with every level's lock; the hold begins before content 2.
        let reconciler = try site.run(fix: true, directories: silver.directories, { $0.lookPatience = .seconds(3) },
                                      onProgress: { done, _ in if done == 1 { silver.hold() } })
        let found = reconciler.findings
        #expect(found.map { "\($0.cid ?? 0) \($0.kind.rawValue) \($0.fixed ?? "-")" }
                == ["1 wrong_level database set to bronze", "2 wrong_level -", "0 level_unavailable -"], "\(found.map(\.line))")
        #expect(found.last?.detail.hasPrefix("level 'silver' not looked at from some moment of the run on: its directory \(silver.path) did not answer "
                                             + "within 3.0 seconds as content 2's lock was taken") == true, "\(found.last?.detail ?? "")")
        #expect(found.last?.detail.hasSuffix("the 1 contents the database places on it that came after were left alone") == true)
        #expect(try site.database.level(1) == "bronze" && site.database.level(2) == "gold" && site.database.level(3) == "silver")
        // Once the lock file opens, the lock the late look takes is let go: once that look has
        // ended, the content can be locked there.
        silver.release()
        let deadline = ContinuousClock.now + .seconds(60)
        while reconciler.looks.isLooking(at: "silver") && ContinuousClock.now < deadline { usleep(20_000) }
        #expect(!reconciler.looks.isLooking(at: "silver"))
        let lock = try ContentLock.tryLock(cid: 2, in: [try LevelRoot(LevelPlace(level: "silver", directory: silver.path))])
        #expect(lock != nil, "content 2's lock in silver is still held")
        lock?.release()
    }

    /// A level that stops answering as the lock of its first stale temporary file is taken: that
    /// file and the next are left where they are — neither is removed under the other levels'
    /// locks alone — and the run ends.
    @Test func aLevelThatStopsAnsweringAsAStalePartsLockIsTakenKeepsItsParts() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(contents: [(1, "a.bin", "gold")])
        defer { site.remove() }
        try TestFiles.make(site.path("gold", "a.bin"), bytes: 100)
        let old = Date(timeIntervalSinceNow: -7200)
        let parts = [site.path("silver", ".relocator/tmp/7-1.part"), site.path("silver", ".relocator/tmp/8-1.part")]
        for part in parts { try TestFiles.make(part, bytes: 10, mtime: old) }
        let silver = try FuseSilver(site, holding: .lockFileOpen)
        defer { silver.remove() }
        // The hold begins once the contents are checked, before the temporary files.
        let found = try site.run(fix: true, directories: silver.directories, { $0.lookPatience = .seconds(3) },
                                 onProgress: { done, all in if done == all { silver.hold() } }).findings
        #expect(found.map(\.kind) == [.stalePart, .levelUnavailable], "\(found.map(\.line))")
        #expect(found.first?.fixed == nil && found.first?.detail.hasSuffix("; left alone: a level did not answer as the content's lock was taken") == true,
                "\(found.map(\.line))")
        #expect(parts.allSatisfy { TestFiles.exists($0) })
    }

    /// A level that stops answering as it is walked for an earlier version's temporary names (its
    /// listing waits): the walk is left, nothing of it is moved aside, the other levels are walked,
    /// and the run ends.
    @Test func aLevelThatStopsAnsweringAsItIsWalkedIsLeftAloneAndTheRunEnds() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(contents: [(1, "a.bin", "gold")])
        defer { site.remove() }
        try TestFiles.make(site.path("gold", "a.bin"), bytes: 100)
        let old = Date(timeIntervalSinceNow: -7200)
        try TestFiles.make(site.path("silver", ".x.bin.relocator-7-1.part"), bytes: 10, mtime: old)
        try TestFiles.make(site.path("bronze", ".y.bin.relocator-8-1.part"), bytes: 10, mtime: old)
        let silver = try FuseSilver(site, holding: .rootListing)
        defer { silver.remove() }
        silver.hold()
        let found = try site.run(fix: true, directories: silver.directories) { $0.lookPatience = .seconds(3) }.findings
        #expect(found.map { "\($0.cid ?? 0) \($0.kind.rawValue)" } == ["8 legacy_part", "0 level_unavailable"], "\(found.map(\.line))")
        #expect(found.first?.fixed == "moved to bronze/.relocator/orphans/.y.bin.relocator-8-1.part", "\(found.map(\.line))")
        #expect(found.last?.detail.hasPrefix("level 'silver' not looked at from some moment of the run on: its directory \(silver.path) did not answer "
                                             + "within 3.0 seconds as its directories were walked") == true, "\(found.last?.detail ?? "")")
        #expect(TestFiles.exists(site.path("silver", ".x.bin.relocator-7-1.part")))
    }

    /// `café` with `é` and with `e` and a combining accent are two files and two names: neither a
    /// shared filename nor left unchecked.
    @Test func twoSpellingsOfOneCharacterAreTwoContentsFiles() throws {
        let composed = "caf\u{E9}.bin", decomposed = "cafe\u{301}.bin"
        let site = try Site(contents: [(51, composed, "bronze"), (52, decomposed, "gold")])
        defer { site.remove() }
        try TestFiles.make(site.path("bronze", composed), bytes: 100)
        try TestFiles.make(site.path("silver", decomposed), bytes: 100)
        let found = try site.run(fix: false)
        #expect(found.map(\.kind) == [.wrongLevel] && found.first?.cid == 52, "\(found)")
    }

    @Test func aFileOnAnotherLevelIsRecordedWhereItIs() throws {
        let site = try Site(contents: [(1, "a.mp4", "bronze")])
        defer { site.remove() }
        try TestFiles.make(site.path("gold", "a.mp4"), bytes: 100)
        let found = try site.run(fix: false)
        #expect(found.map(\.kind) == [.wrongLevel] && found[0].fixed == nil)
        #expect(try site.database.level(1) == "bronze")
        #expect(try site.run(fix: true).map(\.fixed) == ["database set to gold"])
        #expect(try site.database.level(1) == "gold" && site.run(fix: false).isEmpty)
    }

    /// Without --fix nothing is written: a level directory never seen gets no `.relocator/` and is
    /// not recorded as seen (were it a bare mountpoint, it would look like the level afterwards);
    /// with --fix it gets both.
    @Test func withoutFixALevelNeverSeenIsLookedAtButNotInitialised() throws {
        let site = try Site(contents: [(1, "a.mp4", "bronze")])
        defer { site.remove() }
        try TestFiles.make(site.path("bronze", "a.mp4"), bytes: 100)
        #expect(try site.run(fix: false).isEmpty)
        for level in site.directories.names { #expect(!TestFiles.exists(site.path(level, ".relocator")), "\(level)") }
        guard case .names(let seen) = try site.queue.control(.levelsSeen(adding: [])) else { throw Unexpected() }
        #expect(seen.isEmpty, "\(seen)")
        #expect(try site.run(fix: true).isEmpty)
        for level in site.directories.names { #expect(TestFiles.exists(site.path(level, ".relocator")), "\(level)") }
        guard case .names(let after) = try site.queue.control(.levelsSeen(adding: [])) else { throw Unexpected() }
        #expect(Set(after) == Set(site.directories.names))
    }

    @Test func aDirectoryAtAContentsPathIsNamedAsADirectoryNotAFile() throws {
        let site = try Site(contents: [(1, "a.mp4", "gold"), (2, "b.mp4", "gold")])
        defer { site.remove() }
        try FileManager.default.createDirectory(atPath: site.path("gold", "a.mp4"), withIntermediateDirectories: true)
        let found = try site.run(fix: true)
        #expect(found.map(\.kind) == [.missing, .missing] && found.allSatisfy { $0.fixed == nil })
        let directory = try #require(found.first { $0.cid == 1 })
        #expect(directory.detail == "a.mp4 is a directory, not a file, on gold (\(site.path("gold", "a.mp4"))); no level holds it as a file; "
                + "the database says gold; if it is gone for good, `relocator contents remove --cid 1` forgets the content", "\(directory.detail)")
        let missing = try #require(found.first { $0.cid == 2 })
        #expect(missing.detail.hasPrefix("b.mp4 is on no level's disk (looked in "), "\(missing.detail)")
        #expect(TestFiles.exists(site.path("gold", "a.mp4")))
    }

    @Test func anIdenticalCopyGoesOnlyBesideTheCopyTheDatabaseNamesAndADifferentOneStays() throws {
        let site = try Site(contents: [(1, "same.bin", "silver"), (2, "differ.bin", "silver")])
        defer { site.remove() }
        try TestFiles.make(site.path("silver", "same.bin"), bytes: 5000)
        try FileManager.default.copyItem(atPath: site.path("silver", "same.bin"), toPath: site.path("gold", "same.bin"))
        try TestFiles.make(site.path("silver", "differ.bin"), bytes: 5000)
        try TestFiles.make(site.path("gold", "differ.bin"), bytes: 5000)
        let found = try site.run(fix: true)
        #expect(Set(found.map(\.kind)) == [.duplicate, .conflict])
        #expect(found.first { $0.kind == .duplicate }?.fixed == "kept the copy on silver, removed gold")
        #expect(!TestFiles.exists(site.path("gold", "same.bin")) && TestFiles.exists(site.path("silver", "same.bin")))
        #expect(TestFiles.exists(site.path("gold", "differ.bin")) && TestFiles.exists(site.path("silver", "differ.bin")))
    }

    @Test func bothCopiesOfAMoveInFlightAreLeftAlone() throws {
        let site = try Site(contents: [(1, "moving.bin", "bronze")])
        defer { site.remove() }
        // A worker published the copy on gold and is about to remove the source on bronze.
        try TestFiles.make(site.path("bronze", "moving.bin"), bytes: 2000)
        try FileManager.default.copyItem(atPath: site.path("bronze", "moving.bin"), toPath: site.path("gold", "moving.bin"))
        site.queue.submit(cid: 1, count: 20000, filename: "moving.bin", dbLevel: "bronze", target: "gold")
        _ = try site.queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero))
        #expect(try site.run(fix: true).isEmpty)
        #expect(TestFiles.exists(site.path("gold", "moving.bin")) && TestFiles.exists(site.path("bronze", "moving.bin")))
    }

    @Test func anOldTemporaryFileInTheReservedDirectoryGoesUnderItsContentsLock() throws {
        let site = try Site(contents: [(1, "a.bin", "bronze")])
        defer { site.remove() }
        try TestFiles.make(site.path("bronze", "a.bin"), bytes: 10)
        let old = Date(timeIntervalSinceNow: -3600)
        try TestFiles.make(site.path("gold", ".relocator/tmp/1-5.part"), bytes: 10, mtime: old)
        try TestFiles.make(site.path("gold", ".relocator/tmp/1-6.part"), bytes: 10, mtime: Date())
        try TestFiles.make(site.path("gold", ".relocator/tmp/2-1.part"), bytes: 10, mtime: old)
        // A delivery of content 2 holds its lock (another process, paused, say): its file stays.
        let roots = try site.directories.names.map { try LevelRoot(site.directories.place(of: $0)!) }
        let holder = try #require(try ContentLock.tryLock(cid: 2, in: roots))
        defer { holder.release() }
        let found = try site.run(fix: true)
        #expect(found.map(\.kind) == [.stalePart, .stalePart])
        #expect(found[0].detail.contains("1-5.part") && found[0].fixed == "removed")
        #expect(found[1].detail.contains("2-1.part") && found[1].fixed == nil && found[1].detail.contains("holds its lock"))
        #expect(!TestFiles.exists(site.path("gold", ".relocator/tmp/1-5.part")))
        #expect(TestFiles.exists(site.path("gold", ".relocator/tmp/1-6.part")) && TestFiles.exists(site.path("gold", ".relocator/tmp/2-1.part")))
    }

    /// A content whose name looks like an earlier version's temporary file is a content: never
    /// removed. A file under such a name that no content names and whose job is gone is moved into
    /// `.relocator/orphans/`, not deleted.
    @Test func aFileNamedLikeAnEarlierTemporaryFileIsMovedAsideOnlyWhenNoContentNamesItAndItsJobIsGone() throws {
        let site = try Site(contents: [(1, "a.bin", "bronze"), (9, "e2/.notes.relocator-9-1.part", "gold")])
        defer { site.remove() }
        let old = Date(timeIntervalSinceNow: -7200)
        try TestFiles.make(site.path("bronze", "a.bin"), bytes: 10)
        let content = try TestFiles.make(site.path("gold", "e2/.notes.relocator-9-1.part"), bytes: 10, mtime: old)
        let leftover = try TestFiles.make(site.path("gold", ".a.bin.relocator-1-5.part"), bytes: 10, mtime: old)
        // A job of content 1 with this generation is queued: its file stays whatever its age.
        site.queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        let gen = try #require(site.queue.job(1)?.gen)
        try TestFiles.make(site.path("gold", ".a.bin.relocator-1-\(gen).part"), bytes: 10, mtime: old)
        let found = try site.run(fix: true)
        #expect(found.map(\.kind) == [.legacyPart], "\(found)")
        #expect(found.first?.fixed == "moved to gold/.relocator/orphans/.a.bin.relocator-1-5.part")
        #expect(try TestFiles.sha256(site.path("gold", ".relocator/orphans/.a.bin.relocator-1-5.part")) == leftover)
        #expect(try TestFiles.sha256(site.path("gold", "e2/.notes.relocator-9-1.part")) == content)
        #expect(TestFiles.exists(site.path("gold", ".a.bin.relocator-1-\(gen).part")))
    }

    /// A content named like an earlier temporary file whose directory was renamed (an operator, a
    /// tool; renamed back later): its path names no row, but its file name is a content's — it
    /// stays where it is, and is found again once the directory is back.
    @Test func aContentNamedLikeAnEarlierTemporaryFileInARenamedDirectoryIsNotMovedAside() throws {
        let site = try Site(contents: [(9, "e2/.notes.relocator-9-1.part", "bronze"), (10, "e3/.x.relocator-77-1.part", "bronze")])
        defer { site.remove() }
        let old = Date(timeIntervalSinceNow: -7200)
        let content = try TestFiles.make(site.path("bronze", "e2/.notes.relocator-9-1.part"), bytes: 10, mtime: old)
        try TestFiles.make(site.path("bronze", "e3/.x.relocator-77-1.part"), bytes: 10, mtime: old)
        try TestFiles.make(site.path("bronze", "legacy/.old.bin.relocator-900001-1.part"), bytes: 10, mtime: old)
        try FileManager.default.moveItem(atPath: site.path("bronze", "e2"), toPath: site.path("bronze", "e2.moved"))
        try FileManager.default.moveItem(atPath: site.path("bronze", "e3"), toPath: site.path("bronze", "e3.moved"))
        let found = try site.run(fix: true)
        let parts = found.filter { $0.kind == .legacyPart }
        #expect(parts.count == 3, "\(found)")
        for name in ["e2.moved/.notes.relocator-9-1.part", "e3.moved/.x.relocator-77-1.part"] {
            let part = try #require(parts.first { $0.detail.contains(name) })
            #expect(part.fixed == nil && part.detail.contains("left alone"), "\(part)")
            #expect(TestFiles.exists(site.path("bronze", name)))
        }
        #expect(parts.first { $0.detail.contains("legacy/") }?.fixed == "moved to bronze/.relocator/orphans/legacy%2F.old.bin.relocator-900001-1.part")
        try FileManager.default.moveItem(atPath: site.path("bronze", "e2.moved"), toPath: site.path("bronze", "e2"))
        #expect(try TestFiles.sha256(site.path("bronze", "e2/.notes.relocator-9-1.part")) == content)
    }

    /// A level seen in use before whose directory lacks `.relocator/` (a bare mountpoint) is not
    /// looked at: its contents are left alone (not "missing", no copy elsewhere taken for theirs),
    /// nothing is created in it, and a finding says so. A level never seen is initialised.
    @Test func aLevelInUseBeforeWithoutItsReservedDirectoryIsLeftAlone() throws {
        let site = try Site(contents: [(1, "a.bin", "gold"), (2, "b.bin", "silver")])
        defer { site.remove() }
        try TestFiles.make(site.path("bronze", "a.bin"), bytes: 10)
        try TestFiles.make(site.path("silver", "b.bin"), bytes: 10)
        _ = try site.queue.control(.levelsSeen(adding: ["gold"]))
        let found = try site.run(fix: true)
        #expect(found.map(\.kind) == [.levelUnavailable], "\(found)")
        #expect(found.first?.detail.hasPrefix("level 'gold' not looked at: \(site.directories.directory(of: "gold")!) has no .relocator/") == true)
        #expect(found.first?.detail.hasSuffix("the 1 contents the database places on it were left alone") == true, "\(found)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.path("gold", "")).isEmpty)
        #expect(try site.database.level(1) == "gold" && TestFiles.exists(site.path("bronze", "a.bin")))
        #expect(TestFiles.exists(site.path("silver", ".relocator")) && TestFiles.exists(site.path("bronze", ".relocator")))
        guard case .names(let seen) = try site.queue.control(.levelsSeen(adding: [])) else { throw Unexpected() }
        #expect(seen == ["bronze", "gold", "silver"])
    }

    @Test func aLevelIsUsedWhenItHasItsReservedDirectoryAndInitialisedWhenNeverSeen() {
        #expect(LevelReadiness.of(hasReservedDirectory: true, seenBefore: true) == .ready)
        #expect(LevelReadiness.of(hasReservedDirectory: true, seenBefore: false) == .ready)
        #expect(LevelReadiness.of(hasReservedDirectory: false, seenBefore: false) == .initialise)
        #expect(LevelReadiness.of(hasReservedDirectory: false, seenBefore: true) == .unavailable)
    }

    struct Unexpected: Error {}

    @Test func theFileNameOfAContentAnywhereKeepsALegacyLookingFile() {
        #expect(LegacyPartName.mayBe(contentNamed: "e2/.n.relocator-9-1.part", at: "e2/.n.relocator-9-1.part"))
        #expect(LegacyPartName.mayBe(contentNamed: "e2/.n.relocator-9-1.part", at: "e2.moved/.n.relocator-9-1.part"))
        #expect(LegacyPartName.mayBe(contentNamed: ".n.relocator-9-1.part", at: "a/b/.n.relocator-9-1.part"))
        #expect(!LegacyPartName.mayBe(contentNamed: "e2/n", at: "e2/.n.relocator-9-1.part"))
        #expect(!LegacyPartName.mayBe(contentNamed: "e2/x.relocator-9-1.part", at: "e2/.x.relocator-9-1.part"))
    }

    @Test func aFilenameThroughASymlinkIsReportedAndNothingOutsideIsTouched() throws {
        let site = try Site(contents: [(1, "u/victim.txt", "gold")])
        let outside = try TemporaryDirectory("relocator-outside")
        defer { site.remove(); outside.remove() }
        let sum = try TestFiles.make(outside.path + "/victim.txt", bytes: 100)
        try FileManager.default.createSymbolicLink(atPath: site.path("gold", "u"), withDestinationPath: outside.path)
        try TestFiles.make(site.path("bronze", "u/victim.txt"), bytes: 100)
        let found = try site.run(fix: true)
        #expect(found.map(\.kind) == [.unsafeFilename])
        #expect(try TestFiles.sha256(outside.path + "/victim.txt") == sum)
    }
}
