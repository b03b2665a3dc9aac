@testable import FileMover
import Foundation
import RelocatorCore
import Testing
import TestSupport

/// The ways a hostile review broke the move: two level names for one directory, links out of the
/// tree (in the search of other levels, and swapped in mid-move), a source changed during the copy,
/// and directories that were not durable. Each test runs against real directories and mounts, with
/// `openat2` and with the `openat` walk that kernels without it use.
@Suite struct SafetyTests {
    static let resolutions: [LevelRoot.PathResolution] = [.automatic, .componentWalk]

    func mover(_ resolution: LevelRoot.PathResolution, faults: MoveFaults? = nil) -> FileMover {
        var mover = FileMover(chunkSize: 64 * 1024, faults: faults)
        mover.resolution = resolution
        return mover
    }

    // MARK: - 1. Two level names for one directory

    enum Spelling: String, CaseIterable, Sendable { case trailingSlash, doubleSlash, symlink, bindMount }

    /// `gold=/d/ssd/,silver=/d/ssd`: the file at `silver` is "already" at `gold` — the same entry.
    /// Removing the "source" would remove the only copy: refused, in both directions.
    @Test(arguments: Spelling.allCases)
    func twoLevelNamesForOneDirectoryNeverRemoveTheOnlyCopy(spelling: Spelling) throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let ssd = root.path + "/ssd"
        let sum = try TestFiles.make(ssd + "/movies/x.bin", bytes: 50_000)
        var bind: BindMount?
        defer { bind?.remove() }
        let other: String
        switch spelling {
        case .trailingSlash: other = ssd + "/"
        case .doubleSlash: other = root.path + "//ssd"
        case .symlink:
            other = root.path + "/alias"
            symlink(ssd, other)
        case .bindMount:
            bind = try BindMount(of: ssd)
            other = bind!.path
        }
        for resolution in Self.resolutions {
            for (source, target) in [(ssd, other), (other, ssd)] {
                let request = try moveRequest("movies/x.bin", from: source, to: target)
                #expect { try mover(resolution).move(request) } throws: { error in
                    guard let error = error as? MoveError else { return false }
                    return error.kind == .unsafePath && error.isPermanent && error.message.contains("are one directory")
                }
                #expect(try TestFiles.sha256(ssd + "/movies/x.bin") == sum, "\(spelling), \(resolution)")
            }
        }
    }

    // MARK: - 2. The search of other levels

    /// The file is not at its recorded level; another level has `u → /elsewhere`: the search must
    /// not take `/elsewhere/victim.txt` (and remove it).
    @Test(arguments: resolutions)
    func theSearchOfOtherLevelsDoesNotFollowALinkOutOfTheTree(resolution: LevelRoot.PathResolution) throws {
        let root = try TemporaryDirectory()
        let elsewhere = try TemporaryDirectory("relocator-elsewhere")
        defer { root.remove(); elsewhere.remove() }
        let (bronze, silver, gold) = (root.path + "/bronze", root.path + "/silver", root.path + "/gold")
        for dir in [bronze, silver, gold] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try TestFiles.make(elsewhere.path + "/victim.txt", bytes: 3000)
        let before = try DirectorySnapshot(elsewhere.path)
        symlink(elsewhere.path, silver + "/u")
        #expect { try mover(resolution).move(moveRequest("u/victim.txt", from: bronze, to: gold, others: [silver])) } throws: {
            ($0 as? MoveError)?.description == "unsafe_path: other0/u is a symbolic link; a filename must stay inside its level directory"
        }
        #expect(try DirectorySnapshot(elsewhere.path) == before)
        #expect(try TestFiles.levelContents(gold).isEmpty)
    }

    // MARK: - 3. A directory swapped for a link mid-move

    /// Renames `<level>/u` away and puts a link to `outside` in its place.
    static func swapForLink(_ directory: String, to outside: String) throws {
        try FileManager.default.moveItem(atPath: directory, toPath: directory + ".moved")
        guard symlink(outside, directory) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
    }

    /// Between the verified copy and the publish, the target's directory becomes a link to an
    /// outside directory: nothing is created there, the copy is not published, the source stays.
    @Test(arguments: resolutions, [true, false])
    func aTargetDirectorySwappedForALinkBeforePublishingLeadsNowhere(resolution: LevelRoot.PathResolution, crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        let outside = try TemporaryDirectory("relocator-outside")
        defer { root.remove(); disk.remove(); outside.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold + "/u", withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/u/x.bin", bytes: 200_000)
        try TestFiles.make(outside.path + "/keep.txt", bytes: 100)
        let before = try DirectorySnapshot(outside.path)
        let swap: @Sendable () throws -> Void = { try Self.swapForLink(gold + "/u", to: outside.path) }
        // Across devices the copy is verified first (onStep); on one device, right before the link.
        let mover = mover(resolution, faults: MoveFaults(onStep: { if $0 == .verified { try swap() } }))
        let hooks = MoveHooks(willPublish: { _, _ in if !crossDevice { try swap() } })
        #expect { try mover.move(moveRequest("u/x.bin", from: bronze, to: gold), hooks: hooks) } throws: {
            ($0 as? MoveError)?.description == "unsafe_path: to/u is a symbolic link; a filename must stay inside its level directory"
        }
        #expect(try DirectorySnapshot(outside.path) == before)
        #expect(try TestFiles.sha256(bronze + "/u/x.bin") == sum)
        #expect(try FileManager.default.contentsOfDirectory(atPath: gold + "/u.moved").isEmpty)
        #expect(try TestFiles.levelContents(gold).filter { $0.hasPrefix(ReservedDirectory.name) }.isEmpty, "no temporary file left")
    }

    /// Between the publish and the removal of the source, the source's directory becomes a link to
    /// an outside directory holding a file of the same name: that file is not removed.
    @Test(arguments: resolutions, [true, false])
    func aSourceDirectorySwappedForALinkAfterPublishingRemovesNothingOutside(resolution: LevelRoot.PathResolution, crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        let outside = try TemporaryDirectory("relocator-outside")
        defer { root.remove(); disk.remove(); outside.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/u/x.bin", bytes: 200_000)
        try TestFiles.make(outside.path + "/x.bin", bytes: 5000)
        let before = try DirectorySnapshot(outside.path)
        let mover = mover(resolution, faults: MoveFaults(onStep: { step in
            if step == .targetDirectorySynced { try Self.swapForLink(bronze + "/u", to: outside.path) }
        }))
        #expect { try mover.move(moveRequest("u/x.bin", from: bronze, to: gold)) } throws: {
            ($0 as? MoveError)?.description == "unsafe_path: from/u is a symbolic link; a filename must stay inside its level directory"
        }
        #expect(try DirectorySnapshot(outside.path) == before)
        // Both copies are kept: the published one and the source, in the directory renamed away.
        #expect(try TestFiles.sha256(gold + "/u/x.bin") == sum)
        #expect(try TestFiles.sha256(bronze + "/u.moved/x.bin") == sum)
    }

    /// Links at the final name, at the temporary file's name or at the reserved directory are
    /// refused; what they point to is not touched.
    @Test(arguments: [true, false])
    func linksPlantedAtTheTargetNamesAreRefused(crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        let outside = try TemporaryDirectory("relocator-outside")
        defer { root.remove(); disk.remove(); outside.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/t.bin", bytes: 10_000)
        try TestFiles.make(outside.path + "/victim", bytes: 100)
        let before = try DirectorySnapshot(outside.path)
        try TestFiles.makeReservedDirectory(in: gold)
        // (The temporary file's name matters across filesystems only.)
        for name in ["t.bin", ".relocator/tmp/7-1.part", ".relocator"] where crossDevice || name != ".relocator/tmp/7-1.part" {
            if name == ".relocator" { try FileManager.default.removeItem(atPath: gold + "/.relocator") }
            symlink(outside.path + (name == ".relocator" ? "" : "/victim"), gold + "/" + name)
            #expect { try FileMover().move(moveRequest("t.bin", from: bronze, to: gold)) } throws: {
                ($0 as? MoveError)?.description == "unsafe_path: to/\(name) is a symbolic link; a filename must stay inside its level directory"
            }
            unlink(gold + "/" + name)
        }
        #expect(try DirectorySnapshot(outside.path) == before)
        #expect(try TestFiles.sha256(bronze + "/t.bin") == sum)
    }

    /// Two mounts of one filesystem (a bind mount) cannot be linked across (EXDEV): the move
    /// copies and verifies instead.
    @Test func aBindMountOfTheSameFilesystemFallsBackToACopy() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/gold", withIntermediateDirectories: true)
        let bind = try BindMount(of: root.path + "/gold")
        defer { bind.remove() }
        let sum = try TestFiles.make(root.path + "/bronze/b.bin", bytes: 100_000)
        let result = try FileMover().move(moveRequest("b.bin", from: root.path + "/bronze", to: bind.path))
        #expect(result.method == .copied)
        #expect(try TestFiles.sha256(root.path + "/gold/b.bin") == sum && !TestFiles.exists(root.path + "/bronze/b.bin"))
    }

    // MARK: - 4. A source changed during the copy

    /// Appends to, rewrites in place (same size), replaces or removes a file.
    enum Change: String, CaseIterable, Sendable {
        case appended, rewritten, replaced, removed

        func apply(to path: String) throws {
            switch self {
            case .appended:
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(repeating: 0x42, count: 10))
                try handle.close()
            case .rewritten:
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try handle.seek(toOffset: 100)
                try handle.write(contentsOf: Data(repeating: 0x43, count: 10))
                try handle.close()
            case .replaced:
                let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
                try TestFiles.make(path + ".new", bytes: size)
                guard rename(path + ".new", path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
            case .removed:
                try FileManager.default.removeItem(atPath: path)
            }
        }
    }

    /// Changed between the copy and the publish: nothing is published, the changed source stays,
    /// `source_changed` is transient, and the next delivery moves the new bytes.
    @Test(arguments: [Change.appended, .rewritten, .replaced])
    func aSourceChangedDuringTheCopyIsNotPublishedAndTheMoveIsRetried(change: Change) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let source = root.path + "/c.bin"
        try TestFiles.make(source, bytes: 300_000)
        let changing = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onStep: { if $0 == .copied { try change.apply(to: source) } }))
        #expect { try changing.move(moveRequest("c.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .sourceChanged && !error.isPermanent
        }
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
        let changed = try TestFiles.sha256(source)
        _ = try FileMover().move(moveRequest("c.bin", from: root.path, to: disk.path))
        #expect(try TestFiles.sha256(disk.path + "/c.bin") == changed && !TestFiles.exists(source))
    }

    /// The source shrinks while the next chunk is read beside the write of the first (chunks of
    /// 1 MiB, each read on another thread): the reader comes back short, the move fails with
    /// `source_changed`, nothing is published and no temporary file stays; the next delivery
    /// moves what the file now holds.
    @Test func aSourceShrinkingUnderTheReadAheadIsNeverPublished() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 16384)
        defer { root.remove(); disk.remove() }
        let source = root.path + "/s.bin"
        try TestFiles.make(source, bytes: 4 << 20)
        let writes = Recorder<Int64>()
        let hooks = MoveHooks(willWrite: { bytes in
            if writes.all.isEmpty { truncate(source, 1536 << 10) }
            writes.append(bytes)
        })
        #expect { try FileMover(chunkSize: 1 << 20).move(moveRequest("s.bin", from: root.path, to: disk.path), hooks: hooks) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .sourceChanged && !error.isPermanent && "\(error)".contains("changed size while it was copied")
        }
        #expect(writes.all.count <= 2, "no chunk past the new end is written: \(writes.all)")
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty)
        let shrunk = try TestFiles.sha256(source)
        let moved = try FileMover(chunkSize: 1 << 20).move(moveRequest("s.bin", from: root.path, to: disk.path))
        #expect(moved.bytes == 1536 << 10)
        #expect(try TestFiles.sha256(disk.path + "/s.bin") == shrunk && !TestFiles.exists(source))
    }

    /// A read of the source failing on the thread that reads ahead is the move's error (EIO,
    /// naming the file): nothing is published, the temporary file goes, the source stays as it
    /// was, and the next delivery moves it.
    @Test func aReadFailingBesideTheWriteFailsTheMoveAndPublishesNothing() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 16384)
        defer { root.remove(); disk.remove() }
        let source = root.path + "/r.bin"
        let size = 4 << 20 + 12345
        let sum = try TestFiles.make(source, bytes: size)
        let asked = Recorder<Int64>()
        let failing = FileMover(chunkSize: 1 << 20, faults: MoveFaults(readFails: { offset in
            asked.append(offset)
            return offset == 2 << 20
        }))
        #expect { try failing.move(moveRequest("r.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .ioError && "\(error)".contains("cannot read") && "\(error)".contains("r.bin")
        }
        #expect(asked.all == [0, 1 << 20, 2 << 20], "the copy stops at the failed read")
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty)
        #expect(try TestFiles.sha256(source) == sum)
        let moved = try FileMover(chunkSize: 1 << 20).move(moveRequest("r.bin", from: root.path, to: disk.path))
        #expect(moved.bytes == Int64(size))
        #expect(try TestFiles.sha256(disk.path + "/r.bin") == sum && !TestFiles.exists(source))
    }

    /// Changed after the publish, right before the source would be removed: the published copy
    /// goes (the source is still there), never both; when the source itself is gone, the published
    /// copy stays and the next delivery verifies it.
    @Test(arguments: Change.allCases, [true, false])
    func aSourceChangedAfterPublishingIsNeverLostWithItsCopy(change: Change, crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let original = try TestFiles.make(bronze + "/c.bin", bytes: 300_000)
        let changing = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onStep: { if $0 == .targetDirectorySynced { try change.apply(to: bronze + "/c.bin") } }))
        nonisolated(unsafe) var recorded: Checksum?
        #expect { try changing.move(moveRequest("c.bin", from: bronze, to: gold), hooks: MoveHooks(willPublish: { sum, _ in recorded = sum })) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .sourceChanged && !error.isPermanent
        }
        if change == .removed {
            #expect(try TestFiles.sha256(gold + "/c.bin") == original, "the only copy stays")
        } else {
            #expect(!TestFiles.exists(gold + "/c.bin"), "the copy of the old bytes is discarded")
        }
        let current = TestFiles.exists(bronze + "/c.bin") ? try TestFiles.sha256(bronze + "/c.bin") : original
        let retried = try FileMover().move(moveRequest("c.bin", from: bronze, to: gold, expected: recorded))
        #expect(retried.method == (change == .removed ? .alreadyInPlace : crossDevice ? .copied : .linked))
        #expect(try TestFiles.sha256(gold + "/c.bin") == current && !TestFiles.exists(bronze + "/c.bin"))
        #expect(TestFiles.partFiles(under: gold).isEmpty)
    }

    // MARK: - 5. Durable directories

    /// Every directory the mover creates for a filename has its parent fsynced (and the target
    /// directory is fsynced once the file is published).
    @Test(arguments: resolutions, [true, false])
    func directoriesTheMoverCreatesAreDurable(resolution: LevelRoot.PathResolution, crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold + "/a", withIntermediateDirectories: true)
        try TestFiles.make(bronze + "/a/b/c/x.bin", bytes: 10_000)
        for level in [bronze, gold] { try TestFiles.makeReservedDirectory(in: level) }
        let synced = Recorder<String>()
        let mover = mover(resolution, faults: MoveFaults(onDirectorySynced: { synced.append($0) }))
        _ = try mover.move(moveRequest("a/b/c/x.bin", from: bronze, to: gold))
        let real = URL(fileURLWithPath: gold).resolvingSymlinksInPath().path
        // a existed; b and c are new: their parents a and a/b were synced, then c after the publish.
        for directory in [real + "/a", real + "/a/b", real + "/a/b/c"] {
            #expect(synced.all.contains(directory), "\(directory) not in \(synced.all)")
        }
        #expect(!synced.all.contains(real), "the level directory itself got nothing new")
    }

    // MARK: - Hooks

    /// A hook saying the job is no longer ours stops the move before publishing; the temporary
    /// file goes, the source stays.
    @Test(arguments: [true, false])
    func aLostLeaseStopsTheMoveBeforePublishing(crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/l.bin", bytes: 100_000)
        let hooks = MoveHooks(willPublish: { _, _ in throw MoveError(.leaseLost, "job 7:1 was taken back") })
        #expect { try FileMover().move(moveRequest("l.bin", from: bronze, to: gold), hooks: hooks) } throws: {
            ($0 as? MoveError)?.kind == .leaseLost
        }
        #expect(try TestFiles.levelContents(gold).isEmpty)
        #expect(try TestFiles.sha256(bronze + "/l.bin") == sum)
    }

    @Test func progressIsReportedPerChunkAndTheRemovalOnce() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        try TestFiles.make(root.path + "/p.bin", bytes: 200_000)
        let progress = Recorder<Int64>()
        let removals = Recorder<Bool>()
        let hooks = MoveHooks(didRemoveSource: { removals.append(true) }, progress: { done, total in
            if total == 200_000 { progress.append(done) }
        })
        _ = try FileMover(chunkSize: 64 * 1024).move(moveRequest("p.bin", from: root.path, to: disk.path), hooks: hooks)
        #expect(progress.all == [65_536, 131_072, 196_608, 200_000])
        #expect(removals.all.count == 1)
    }

    /// A source written to after its copy was verified is never published: were it published, a
    /// crash right then would leave stale bytes under the final name beside a changed source (a
    /// permanent `destination_conflict` for the next delivery).
    @Test func aSourceChangedAfterItsCopyWasVerifiedIsNeverPublished() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let source = root.path + "/c.bin"
        try TestFiles.make(source, bytes: 200_000)
        struct Crash: Error {}
        let mover = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onStep: { step in
            if step == .verified { try Change.appended.apply(to: source) }
            if step == .published { throw Crash() }
        }))
        #expect { try mover.move(moveRequest("c.bin", from: root.path, to: disk.path)) } throws: { moveError($0, .sourceChanged) }
        #expect(!TestFiles.exists(disk.path + "/c.bin"), "nothing published")
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
    }

    /// RESOLVE_NO_SYMLINKS, not only RESOLVE_BENEATH: a link on the way is refused even when it
    /// stays inside the level (the README promises unsafe_path for any link).
    @Test func aLinkThatStaysInsideTheLevelIsRefusedToo() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        try TestFiles.make(bronze + "/real/x.bin", bytes: 1000)
        try FileManager.default.createDirectory(atPath: gold + "/real", withIntermediateDirectories: true)
        symlink("real", bronze + "/v")
        symlink("real", gold + "/u")
        try TestFiles.make(bronze + "/u/y.bin", bytes: 1000)
        for (name, link) in [("v/x.bin", "from/v"), ("u/y.bin", "to/u")] {
            #expect { try FileMover().move(moveRequest(name, from: bronze, to: gold)) } throws: {
                ($0 as? MoveError)?.description == "unsafe_path: \(link) is a symbolic link; a filename must stay inside its level directory"
            }
        }
        #expect(TestFiles.exists(bronze + "/real/x.bin") && TestFiles.exists(bronze + "/u/y.bin") && !TestFiles.exists(gold + "/real/y.bin"))
    }

    /// The copy kept is checked again right before the source goes: if it vanished meanwhile
    /// (another process, a disk fault), the source stays.
    @Test(arguments: [true, false])
    func aPublishedCopyThatVanishesBeforeTheSourceGoesKeepsTheSource(crossDevice: Bool) throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let bronze = root.path + "/bronze"
        let gold = crossDevice ? disk.path : root.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/k.bin", bytes: 100_000)
        let mover = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onStep: { step in
            if step == .targetDirectorySynced { unlink(gold + "/k.bin") }
        }))
        #expect { try mover.move(moveRequest("k.bin", from: bronze, to: gold)) } throws: { moveError($0, .sourceChanged) }
        #expect(try TestFiles.sha256(bronze + "/k.bin") == sum)
    }

    /// The mover removes only its own temporary file, in the reserved directory: a content whose
    /// name looks like a temporary file (an earlier version's, even this very job's) is a content.
    @Test func aContentNamedLikeATemporaryFileIsNeverRemoved() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let (bronze, gold) = (root.path + "/bronze", disk.path)
        try TestFiles.make(bronze + "/e2/notes.bin", bytes: 1000)
        let lookAlikes = ["e2/.notes.bin.relocator-7-2.part", "e2/.notes.relocator-9-1.part", "7-2.part", "e2/7-2.part"]
        var sums: [String: String] = [:]
        for name in lookAlikes { sums[name] = try TestFiles.make(gold + "/" + name, bytes: 333) }
        _ = try FileMover(chunkSize: 64 * 1024).move(moveRequest("e2/notes.bin", from: bronze, to: gold, gen: 2))
        _ = try FileMover().move(moveRequest("e2/notes.bin", from: gold, to: bronze, gen: 3))
        for name in lookAlikes { #expect(try TestFiles.sha256(gold + "/" + name) == sums[name], "\(name)") }
    }
}
