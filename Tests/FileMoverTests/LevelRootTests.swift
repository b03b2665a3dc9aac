@testable import FileMover
import Foundation
import RelocatorCore
import Testing
import TestSupport

/// The one path-safety check the API, the mover and reconcile share, and what reconcile does with
/// it; with `openat2` and with the `openat` walk.
@Suite struct LevelRootTests {
    static let resolutions: [LevelRoot.PathResolution] = [.automatic, .componentWalk]

    func root(_ level: String, _ directory: String, _ resolution: LevelRoot.PathResolution) throws -> LevelRoot {
        try LevelRoot(LevelPlace(level: level, directory: directory), resolution: resolution, onDirectorySynced: nil)
    }

    @Test(arguments: resolutions)
    func lookupTellsFilesFromMissingAndOthersAndRefusesLinks(resolution: LevelRoot.PathResolution) throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory("relocator-outside")
        defer { dir.remove(); outside.remove() }
        try TestFiles.make(dir.path + "/a/b/file.mp4", bytes: 123)
        try TestFiles.make(outside.path + "/secret.mp4", bytes: 10)
        mkfifo(dir.path + "/a/fifo", 0o644)
        symlink(outside.path, dir.path + "/a/out")
        symlink(outside.path + "/secret.mp4", dir.path + "/a/link.mp4")
        let gold = try root("gold", dir.path, resolution)
        #expect(try gold.lookup(Filename("a/b/file.mp4")) == .regularFile(size: 123))
        #expect(try gold.lookup(Filename("a/b/none.mp4")) == .missing)
        #expect(try gold.lookup(Filename("a/nodir/none.mp4")) == .missing)
        #expect(try gold.lookup(Filename("a/b/file.mp4/deeper")) == .missing, "a file where a directory would be")
        #expect(try gold.lookup(Filename("a/b")) == .notRegularFile("a directory"))
        #expect(try gold.lookup(Filename("a/fifo")) == .notRegularFile("a FIFO"))
        for (name, component) in [("a/out/secret.mp4", "gold/a/out"), ("a/link.mp4", "gold/a/link.mp4")] {
            #expect { try gold.lookup(Filename(name)) } throws: {
                ($0 as? MoveError)?.description == "unsafe_path: \(component) is a symbolic link; a filename must stay inside its level directory"
            }
        }
        #expect { try root("gold", dir.path + "/missing", resolution) } throws: { ($0 as? MoveError)?.description.contains("ENOENT") == true }
    }

    @Test(arguments: resolutions)
    func temporaryFilesAreListedWithoutEnteringLinksAndRemovedSafely(resolution: LevelRoot.PathResolution) throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory("relocator-outside")
        defer { dir.remove(); outside.remove() }
        try TestFiles.make(dir.path + "/.a.mp4.relocator-5-1.part", bytes: 1)
        try TestFiles.make(dir.path + "/m/2024/.b.mp4.relocator-6-9.part", bytes: 1)
        try TestFiles.make(dir.path + "/m/b.mp4", bytes: 1)
        try TestFiles.make(dir.path + "/m/.b.mp4.relocator-x.part", bytes: 1)
        try TestFiles.make(dir.path + "/.relocator/orphans/.f.relocator-4-1.part", bytes: 1)
        try FileManager.default.createDirectory(atPath: dir.path + "/m/.c.relocator-1-1.part", withIntermediateDirectories: true)
        try TestFiles.make(outside.path + "/.d.relocator-8-1.part", bytes: 1)
        symlink(outside.path, dir.path + "/m/out")
        symlink(outside.path + "/.d.relocator-8-1.part", dir.path + "/.e.relocator-9-1.part")
        let before = try DirectorySnapshot(outside.path)
        let gold = try root("gold", dir.path, resolution)
        let parts = try gold.legacyParts()
        #expect(parts.map(\.relativePath) == [".a.mp4.relocator-5-1.part", "m/2024/.b.mp4.relocator-6-9.part"])
        #expect(parts.map(\.name) == [LegacyPartName(baseName: "a.mp4", cid: 5, gen: 1), LegacyPartName(baseName: "b.mp4", cid: 6, gen: 9)])

        // Moved aside, never deleted, and only under the content's lock.
        let lock = try #require(try ContentLock.tryLock(cid: 6, in: [gold]))
        #expect(try gold.moveAside(parts[1], holding: lock) == ".relocator/orphans/m%2F2024%2F.b.mp4.relocator-6-9.part")
        lock.release()
        #expect(!TestFiles.exists(dir.path + "/m/2024/.b.mp4.relocator-6-9.part"))
        #expect(TestFiles.exists(dir.path + "/.relocator/orphans/m%2F2024%2F.b.mp4.relocator-6-9.part"))
        // Free once every descriptor of it is closed: a process another test forks holds a copy of
        // this one until it execs, so it is asked again for a while (as a worker would, later).
        var relocked = try ContentLock.tryLock(cid: 6, in: [gold])
        let deadline = ContinuousClock.now + .seconds(10)
        while relocked == nil && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            relocked = try ContentLock.tryLock(cid: 6, in: [gold])
        }
        let again = try #require(relocked)
        #expect(try gold.moveAside(parts[1], holding: again) == nil)
        #expect(try DirectorySnapshot(outside.path) == before)
    }

    @Test func temporaryFilesAreListedAndRemovedInTheReservedDirectoryOnlyUnderTheContentsLock() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gold = try LevelRoot(LevelPlace(level: "gold", directory: dir.path))
        try FileManager.default.createDirectory(atPath: dir.path + "/.relocator/tmp", withIntermediateDirectories: true)
        try TestFiles.make(dir.path + "/.relocator/tmp/5-1.part", bytes: 1)
        try TestFiles.make(dir.path + "/.relocator/tmp/notes.txt", bytes: 1)
        try TestFiles.make(dir.path + "/5-1.part", bytes: 1)
        #expect(try gold.temporaryFiles().map(\.name) == [PartName(cid: 5, gen: 1)])
        #expect(try gold.temporarySize(cid: 5, gen: 1) == 1 && gold.temporarySize(cid: 5, gen: 2) == nil)
        // Another holder of content 5's lock (a delivery in another process, or this one) keeps it.
        let holder = try #require(try ContentLock.tryLock(cid: 5, in: [gold]))
        #expect(try ContentLock.tryLock(cid: 5, in: [gold]) == nil)
        #expect(try ContentLock.tryLock(cid: 6, in: [gold]) != nil, "another content's lock is another byte")
        #expect(try gold.removeTemporary(PartName(cid: 5, gen: 1), holding: holder))
        holder.release()
        #expect(!TestFiles.exists(dir.path + "/.relocator/tmp/5-1.part"))
        #expect(TestFiles.exists(dir.path + "/.relocator/tmp/notes.txt") && TestFiles.exists(dir.path + "/5-1.part"))
    }

    /// A source removed on the hash its endpoint made as it served the file whole: taken only for
    /// the very version served and the proof's algorithm; otherwise the file is read and hashed here.
    @Test func aProvenRemovalTakesTheHashMadeAsServedOnlyForTheVersionServed() throws {
        // (On a tmpfs: a served hash is taken only on a file system whose times are this host's.)
        let dir = try TmpfsMount()
        defer { dir.remove() }
        let gold = try LevelRoot(LevelPlace(level: "gold", directory: dir.path))
        try gold.initialise()
        let bytes = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        for name in ["a", "b", "c", "d"] { try bytes.write(to: URL(fileURLWithPath: dir.path + "/" + name)) }
        let own = try #require(try gold.checksum(of: Filename("a"), algorithm: .xxh128))
        let other = try Checksum(algorithm: .xxh128, hex: String(repeating: "0", count: 32))
        func served(_ name: String) throws -> ServedFile { try #require(try gold.openForTransfer(Filename(name))) }
        let lock = try #require(try ContentLock.tryLock(cid: 1, in: [gold]))
        defer { lock.release() }

        // Served as `other` (which no file here hashes to), and still that version: taken as its hash.
        let a = try gold.removeProven(Filename("a"), checksum: other, holding: lock, served: ServedChecksum(version: served("a").version, checksum: other))
        #expect(a.outcome == .removed && a.hash == .served)
        #expect(!TestFiles.exists(dir.path + "/a"))
        // Written to since it was served (the same bytes again, once its times have moved on): hashed here, and kept.
        let b = try served("b")
        try RedisProcesses.waitUntil("b's times move on") { b.changedBefore(.milliseconds(20)) }
        try bytes.write(to: URL(fileURLWithPath: dir.path + "/b"))
        #expect(try served("b").version != b.version)
        #expect { try gold.removeProven(Filename("b"), checksum: other, holding: lock, served: ServedChecksum(version: b.version, checksum: other)) } throws: {
            ($0 as? MoveError)?.kind == .checksumMismatch
        }
        let bRemoved = try gold.removeProven(Filename("b"), checksum: own, holding: lock, served: ServedChecksum(version: b.version, checksum: other))
        #expect(bRemoved.outcome == .removed && bRemoved.hash == .read)
        // A proof of another algorithm than the served hash's: hashed here (equal: removed).
        let sha = try #require(try gold.checksum(of: Filename("c"), algorithm: .sha256))
        let c = try gold.removeProven(Filename("c"), checksum: sha, holding: lock, served: ServedChecksum(version: served("c").version, checksum: other))
        #expect(c.outcome == .removed && c.hash == .read)
        // No served hash: hashed here.
        let d = try gold.removeProven(Filename("d"), checksum: own, holding: lock)
        #expect(d.outcome == .removed && d.hash == .read)
        let gone = try gold.removeProven(Filename("d"), checksum: own, holding: lock)
        #expect(gone.outcome == .alreadyGone && gone.hash == nil)
    }

    /// On a file system whose times a served hash cannot rely on (here a ramfs), the file is read
    /// and hashed at its removal whatever was served.
    @Test func aServedHashIsNotTakenOnAnotherFileSystem() throws {
        let dir = try TmpfsMount(ramfs: true)
        defer { dir.remove() }
        let level = try LevelRoot(LevelPlace(level: "gold", directory: dir.path))
        try level.initialise()
        try TestFiles.make(dir.path + "/r", bytes: 1 << 20)
        let own = try #require(try level.checksum(of: Filename("r"), algorithm: .xxh128))
        let other = try Checksum(algorithm: .xxh128, hex: String(repeating: "0", count: 32))
        let version = try #require(try level.openForTransfer(Filename("r"))).version
        let lock = try #require(try ContentLock.tryLock(cid: 1, in: [level]))
        defer { lock.release() }
        #expect { try level.removeProven(Filename("r"), checksum: other, holding: lock, served: ServedChecksum(version: version, checksum: other)) } throws: {
            ($0 as? MoveError)?.kind == .checksumMismatch
        }
        let removed = try level.removeProven(Filename("r"), checksum: own, holding: lock, served: ServedChecksum(version: version, checksum: other))
        #expect(removed.outcome == .removed && removed.hash == .read)
    }

    /// When a version counts as settled: `interval` after its change time, a second more when that
    /// time has no fraction of a second (a file system that keeps whole seconds); never for a time
    /// too far ahead to add to.
    @Test func aVersionIsSettledIntervalAfterItsChangeAndASecondMoreOnWholeSeconds() {
        func settled(_ changed: (Int, Int), _ now: (Int, Int), _ interval: Duration = .milliseconds(20)) -> Bool {
            ServedFile.settled(changed: timespec(tv_sec: changed.0, tv_nsec: changed.1), now: timespec(tv_sec: now.0, tv_nsec: now.1), interval: interval)
        }
        #expect(!settled((100, 5), (100, 20_000_004)))
        #expect(settled((100, 5), (100, 20_000_005)))
        #expect(settled((100, 990_000_000), (101, 10_000_000)), "across a second")
        #expect(!settled((100, 0), (100, 500_000_000)), "whole seconds: a write at 100.7 would keep the time 100")
        #expect(!settled((100, 0), (101, 19_999_999)))
        #expect(settled((100, 0), (101, 20_000_000)))
        #expect(settled((-5, 1), (0, 0)), "before 1970")
        #expect(!settled((Int.max, 1), (Int.max, 999_999_999)), "no deadline past the largest time")
        #expect(!settled((Int.max - 1, 0), (Int.max, 0)))
        #expect(!settled((100, 0), (Int.max, 0), .seconds(Int64.max)), "the largest interval, a second more, traps nothing")
        #expect(!settled((100, 5), (Int.max, 0), .seconds(Int64.max)))
        #expect(settled((100, 1), (100, 1), .zero))
    }

    /// A served file's version counts as settled only once it is `interval` old by this host's clock.
    @Test func aServedFileIsSettledOnlyOnceItsLastChangeIsOldEnough() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gold = try LevelRoot(LevelPlace(level: "gold", directory: dir.path))
        try TestFiles.make(dir.path + "/new", bytes: 10)
        let file = try #require(try gold.openForTransfer(Filename("new")))
        #expect(!file.changedBefore(.seconds(3600)))
        #expect(file.changedBefore(.zero))
        #expect(!file.changedBefore(.seconds(Int64.max)), "a deadline past the largest time is never reached")
        let deadline = ContinuousClock.now + .seconds(30)
        while !file.changedBefore(.milliseconds(20)) && ContinuousClock.now < deadline { usleep(1000) }
        #expect(file.changedBefore(.milliseconds(20)))
    }

    @Test func aDuplicateIsRemovedOnlyWhenTheKeptCopyHoldsTheSameBytes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (silver, gold) = (dir.path + "/silver", dir.path + "/gold")
        let sum = try TestFiles.make(gold + "/m/dup.bin", bytes: 100_000)
        try FileManager.default.createDirectory(atPath: silver + "/m", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: gold + "/m/dup.bin", toPath: silver + "/m/dup.bin")
        let mine = try TestFiles.make(silver + "/m/differs.bin", bytes: 1000)
        let theirs = try TestFiles.make(gold + "/m/differs.bin", bytes: 1000)
        try TestFiles.make(silver + "/alone.bin", bytes: 10)
        let silverRoot = try LevelRoot(LevelPlace(level: "silver", directory: silver))
        let goldRoot = try LevelRoot(LevelPlace(level: "gold", directory: gold))

        #expect(try silverRoot.checksum(of: Filename("m/dup.bin"), algorithm: .sha256) == Checksum(algorithm: .sha256, hex: sum))
        #expect(try silverRoot.checksum(of: Filename("m/none.bin"), algorithm: .sha256) == nil)
        #expect(try silverRoot.removeDuplicate(Filename("m/dup.bin"), keeping: goldRoot, algorithm: .xxh128) == xxh128(gold + "/m/dup.bin"))
        #expect(!TestFiles.exists(silver + "/m/dup.bin"))
        #expect(try TestFiles.sha256(gold + "/m/dup.bin") == sum)

        #expect { try silverRoot.removeDuplicate(Filename("m/differs.bin"), keeping: goldRoot, algorithm: .xxh128) } throws: {
            ($0 as? MoveError)?.kind == .destinationConflict
        }
        #expect { try silverRoot.removeDuplicate(Filename("alone.bin"), keeping: goldRoot, algorithm: .xxh128) } throws: {
            ($0 as? MoveError)?.kind == .sourceMissing
        }
        // The same directory under a second level name is not a second copy.
        let alias = try LevelRoot(LevelPlace(level: "alias", directory: silver + "/"))
        #expect { try silverRoot.removeDuplicate(Filename("alone.bin"), keeping: alias, algorithm: .xxh128) } throws: {
            ($0 as? MoveError)?.kind == .unsafePath
        }
        #expect(try TestFiles.sha256(silver + "/m/differs.bin") == mine)
        #expect(try TestFiles.sha256(gold + "/m/differs.bin") == theirs)
        #expect(TestFiles.exists(silver + "/alone.bin"))
    }

    /// The level directory is used through the descriptor held since it was opened, never closed
    /// by a borrower, and open for as long as a borrower is used (even once the level root itself
    /// is no longer referenced).
    @Test func theLevelDirectoryIsBorrowedNotReopenedAndNeverClosedByABorrower() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try TestFiles.make(dir.path + "/file.mp4", bytes: 5)
        func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }
        var gold: LevelRoot? = try root("gold", dir.path, .automatic)
        let held = gold!.rootDirectory().fd
        // Lookups of names in the level directory itself use it, with no descriptor of their own.
        #expect(try gold!.openDirectory([], create: false)?.fd == held)
        #expect(try gold!.stillResolves([], to: gold!.rootDirectory()))
        #expect(try gold!.reopenRoot().fd != held, "a listing has an open file description of its own")
        do {
            let borrowed = gold!.rootDirectory()
            borrowed.closeInBackground()
        }
        RemovedFiles.waitForCloses()
        #expect(isOpen(held.rawValue))
        #expect(try gold!.lookup(Filename("file.mp4")) == .regularFile(size: 5))
        // A borrower keeps the level root, and so its descriptor, alive.
        let borrowed = gold!.rootDirectory()
        gold = nil
        #expect(isOpen(borrowed.fd.rawValue))
        var status = stat()
        #expect(lstat(dir.path, &status) == 0)
        #expect(FileIdentity(try borrowed.stat()).inode == UInt64(status.st_ino))
    }
}

/// `verifyLevelLayout`: what every process checks in `RELOCATOR_LEVELS` at start.
@Suite struct LevelLayoutTests {
    func layout(_ pairs: [(String, String)]) throws -> [ResolvedLevel] {
        try verifyLevelLayout(LevelDirectories(pairs))
    }

    func refusal(_ pairs: [(String, String)]) -> String? {
        do {
            _ = try layout(pairs)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func separateDirectoriesAreResolved() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        for name in ["a", "b", "c"] { try FileManager.default.createDirectory(atPath: root.path + "/" + name, withIntermediateDirectories: true) }
        symlink(root.path + "/c", root.path + "/c-link")
        let levels = try layout([("gold", root.path + "/a/"), ("silver", root.path + "//b"), ("bronze", root.path + "/c-link")])
        let real = URL(fileURLWithPath: root.path).resolvingSymlinksInPath().path
        #expect(levels.map(\.name) == ["gold", "silver", "bronze"])
        #expect(levels.map(\.realPath) == [real + "/a", real + "/b", real + "/c"])
        #expect(levels[2].directory == root.path + "/c-link")
    }

    @Test func onlyAMissingPathMakesALevelAbsentFromThisHost() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/ssd", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root.path + "/file"))
        let found = levelsOnThisHost(LevelDirectories([("gold", root.path + "/ssd"), ("silver", root.path + "/hdd"),
                                                       ("bronze", root.path + "/file/below"), ("tin", root.path + "/file")]))
        // A path through a file, or a file, is no directory of another host: verifyLevelLayout refuses it.
        #expect(found.present.names == ["gold", "bronze", "tin"] && found.absent == ["silver"])
        #expect(found.present.directory(of: "gold") == root.path + "/ssd")
    }

    @Test func twoNamesForOneDirectoryAreRefusedHoweverSpelled() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let ssd = root.path + "/ssd"
        try FileManager.default.createDirectory(atPath: ssd, withIntermediateDirectories: true)
        symlink(ssd, root.path + "/alias")
        let bind = try BindMount(of: ssd)
        defer { bind.remove() }
        let real = URL(fileURLWithPath: ssd).resolvingSymlinksInPath().path
        for spelling in [ssd + "/", root.path + "//ssd", root.path + "/alias", root.path + "/ssd/."] {
            #expect(refusal([("gold", spelling), ("silver", ssd)]) == "RELOCATOR_LEVELS: levels 'gold' and 'silver' are the same directory (\(real))")
        }
        #expect(refusal([("gold", ssd), ("bronze", root.path), ("silver", bind.path)])
            == "RELOCATOR_LEVELS: levels 'gold' and 'silver' are the same directory (\(real) and \(bind.path))")
    }

    @Test func aLevelInsideAnotherIsRefusedAlsoThroughABindMount() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/a/b/c", withIntermediateDirectories: true)
        let real = URL(fileURLWithPath: root.path).resolvingSymlinksInPath().path
        #expect(refusal([("gold", root.path + "/a"), ("silver", root.path + "/a/b/c")])
            == "RELOCATOR_LEVELS: level 'silver' (\(real)/a/b/c) lies inside 'gold' (\(real)/a)")
        #expect(refusal([("silver", root.path + "/a/b"), ("gold", root.path + "/a")])
            == "RELOCATOR_LEVELS: level 'silver' (\(real)/a/b) lies inside 'gold' (\(real)/a)")
        // A `/` that is one character with the combining mark after it is a `/` all the same.
        try FileManager.default.createDirectory(atPath: root.path + "/a/\u{301}m", withIntermediateDirectories: true)
        #expect(refusal([("gold", root.path + "/a"), ("silver", root.path + "/a/\u{301}m")])
            == "RELOCATOR_LEVELS: level 'silver' (\(real)/a/\u{301}m) lies inside 'gold' (\(real)/a)")
        // /a seen under another path: /a/b lies inside it all the same.
        let bind = try BindMount(of: root.path + "/a")
        defer { bind.remove() }
        #expect(refusal([("gold", bind.path), ("silver", root.path + "/a/b")])
            == "RELOCATOR_LEVELS: level 'silver' (\(real)/a/b) lies inside 'gold' (\(bind.path))")
    }

    @Test func aMissingDirectoryOrAFileIsRefusedInOneLine() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try TestFiles.make(root.path + "/file", bytes: 1)
        try FileManager.default.createDirectory(atPath: root.path + "/ok", withIntermediateDirectories: true)
        #expect(refusal([("gold", root.path + "/ok"), ("silver", root.path + "/none")])
            == "RELOCATOR_LEVELS: level 'silver' (\(root.path)/none): no such directory")
        #expect(refusal([("gold", root.path + "/file")])
            == "RELOCATOR_LEVELS: level 'gold' (\(root.path)/file) is a regular file, not a directory")
        #expect(refusal([("gold", root.path + "/file/x")]) == "RELOCATOR_LEVELS: level 'gold' (\(root.path)/file/x): Not a directory (ENOTDIR)")
    }

}
