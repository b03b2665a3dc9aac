@testable import FileMover
import Foundation
import RelocatorCore
import Synchronization
import Testing
import TestSupport

/// A request from level `from` to level `to` (others: `other0`, `other1`…), cid 7.
func moveRequest(_ name: String, from source: String, to target: String, others: [String] = [], gen: Int64 = 1,
                 expected: Checksum? = nil) throws -> MoveRequest {
    MoveRequest(filename: try Filename(name), source: LevelPlace(level: "from", directory: source),
                target: LevelPlace(level: "to", directory: target),
                others: others.enumerated().map { LevelPlace(level: "other\($0.offset)", directory: $0.element) },
                cid: 7, gen: gen, expectedChecksum: expected)
}

/// XXH3-128 of a file as `xxhsum -H2` computes it.
func xxh128(_ path: String) throws -> Checksum {
    try Checksum(algorithm: .xxh128, hex: try TestFiles.xxh128(path))
}

func moveError(_ error: any Error, _ kind: MoveError.Kind) -> Bool {
    (error as? MoveError)?.kind == kind
}

/// Values written from the mover's hooks and read by the test.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
}

/// Real files between real directories; a tmpfs mount where a second filesystem, a full disk or a
/// read-only one is needed.
@Suite struct FileMoverTests {
    let mover = FileMover(chunkSize: 64 * 1024)

    @Test func onOneFilesystemTheNameMovesAndTheChecksumIsRecorded() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/g.mp4", bytes: 300_000)
        let expected = try xxh128(bronze + "/g.mp4")
        let result = try mover.move(moveRequest("g.mp4", from: bronze, to: gold))
        #expect(result == MoveResult(bytes: 300_000, checksum: expected, method: .linked, foundIn: "from"))
        #expect(!TestFiles.exists(bronze + "/g.mp4"))
        #expect(try TestFiles.sha256(gold + "/g.mp4") == sum)
        #expect(TestFiles.mode(gold + "/g.mp4") == 0o640)
    }

    @Test func acrossFilesystemsTheCopyIsVerifiedAndKeepsModeAndTime() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 16 * 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/movies/2024/big.bin", bytes: 5_000_001, mode: 0o604)
        let expected = try xxh128(root.path + "/movies/2024/big.bin")
        nonisolated(unsafe) var published: (Checksum, Int64)?
        let result = try mover.move(moveRequest("movies/2024/big.bin", from: root.path, to: disk.path),
                                    hooks: MoveHooks(willPublish: { published = ($0, $1) }))
        #expect(result == MoveResult(bytes: 5_000_001, checksum: expected, method: .copied, foundIn: "from"))
        #expect(published?.0 == expected && published?.1 == 5_000_001)
        #expect(try TestFiles.sha256(disk.path + "/movies/2024/big.bin") == sum)
        #expect(TestFiles.mode(disk.path + "/movies/2024/big.bin") == 0o604)
        #expect(TestFiles.mtime(disk.path + "/movies/2024/big.bin") == 1_600_000_000)
        #expect(!TestFiles.exists(root.path + "/movies/2024/big.bin"))
        #expect(TestFiles.partFiles(under: disk.path).isEmpty)
    }

    /// The copy gets the source's times before its fsync and is read back after it: that read
    /// must not move its access time (the source's level is mounted `noatime`, so the source's own
    /// reads leave its access time as set; the target's, `relatime`, would update the copy's).
    @Test func theCopyKeepsTheSourcesAccessTimeThoughItIsReadBackAfterwards() throws {
        let source = try TmpfsMount(sizeKiB: 4 * 1024)
        let disk = try TmpfsMount(sizeKiB: 4 * 1024)
        defer { source.remove(); disk.remove() }
        let remount = try ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), ["-o", "remount,noatime", source.path])
        try #require(remount.status == 0, "\(remount.stderr)")
        let path = source.path + "/a.bin"
        let sum = try TestFiles.make(path, bytes: 1_000_003)
        var times = [timespec(tv_sec: 1_500_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        try #require(utimensat(AT_FDCWD, path, &times, 0) == 0)
        _ = try mover.move(moveRequest("a.bin", from: source.path, to: disk.path))
        var moved = stat()
        try #require(stat(disk.path + "/a.bin", &moved) == 0)
        #expect(try TestFiles.sha256(disk.path + "/a.bin") == sum)
        #expect(moved.st_atim.tv_sec == 1_500_000_000 && moved.st_atim.tv_nsec == 123_456_789,
                "access time \(moved.st_atim.tv_sec).\(moved.st_atim.tv_nsec)")
        #expect(moved.st_mtim.tv_sec == 1_600_000_000)
    }

    @Test func everyPhaseOfAMoveIsTimedAndTogetherTheyTakeNoLongerThanTheMove() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4 * 1024)
        defer { root.remove(); disk.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/gold", withIntermediateDirectories: true)
        _ = try TestFiles.make(root.path + "/bronze/a.bin", bytes: 200_000)
        _ = try TestFiles.make(root.path + "/bronze/b.bin", bytes: 200_000)
        for (name, target, expected) in [("a.bin", disk.path, Set(MovePhase.allCases)),
                                         ("b.bin", root.path + "/gold",
                                          Set(MovePhase.allCases).subtracting([.create, .fsync, .readBack, .attributes]))] {
            let phases = Recorder<(MovePhase, Duration)>()
            let started = ContinuousClock.now
            _ = try mover.move(moveRequest(name, from: root.path + "/bronze", to: target),
                               hooks: MoveHooks(phase: { phases.append(($0, $1)) }))
            let took = ContinuousClock.now - started
            #expect(Set(phases.all.map(\.0)) == expected, "\(name)")
            let sum = phases.all.reduce(Duration.zero) { $0 + $1.1 }
            #expect(sum <= took && sum > .zero, "\(name): phases \(sum), move \(took)")
        }
    }

    @Test func aDeferredSourceDirectorySyncIsLeftToTheCallerAndDoneByTheResult() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4 * 1024)
        defer { root.remove(); disk.remove() }
        let synced = Recorder<String>()
        let mover = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onDirectorySynced: { synced.append($0) }))
        _ = try TestFiles.make(root.path + "/bronze/a.bin", bytes: 100_000)
        for level in [root.path + "/bronze", disk.path] { try TestFiles.makeReservedDirectory(in: level) }
        let result = try mover.move(moveRequest("a.bin", from: root.path + "/bronze", to: disk.path),
                                    hooks: MoveHooks(deferSourceDirectorySync: true))
        #expect(!TestFiles.exists(root.path + "/bronze/a.bin") && TestFiles.exists(disk.path + "/a.bin"))
        // The target's directory is synced by the move; the source's is not, yet.
        #expect(synced.all.contains(disk.path) && !synced.all.contains(root.path + "/bronze"), "\(synced.all)")
        let pending = try #require(result.pendingSync)
        try pending.sync()
        #expect(synced.all.last == root.path + "/bronze")
        // Without the hook, the move syncs it and leaves nothing pending.
        _ = try TestFiles.make(root.path + "/bronze/b.bin", bytes: 100_000)
        let plain = try mover.move(moveRequest("b.bin", from: root.path + "/bronze", to: disk.path))
        #expect(plain.pendingSync == nil && synced.all.filter { $0 == root.path + "/bronze" }.count == 2)
    }

    /// A size the file system reports (a sparse file may claim up to Int64.max) sizes the buffers
    /// without trapping: at most a chunk, at least a page.
    @Test func chunkBuffersFitAnySizeAFileMayClaim() {
        for size in [Int64.max, Int64.max - 4094, -1, Int64.min, 0, 5000] {
            let buffers = ChunkBuffers(chunkSize: 1 << 20)
            buffers.fit(size)
            let expected = size == 5000 ? 8192 : (size <= 0 ? 4096 : 1 << 20)
            #expect(buffers[0].count == expected, "size \(size)")
        }
    }

    @Test func anEmptyFileMovesToo() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024)
        defer { root.remove(); disk.remove() }
        try TestFiles.make(root.path + "/empty", bytes: 0)
        let expected = try xxh128(root.path + "/empty")
        #expect(try mover.move(moveRequest("empty", from: root.path, to: disk.path)).checksum == expected)
        #expect(TestFiles.exists(disk.path + "/empty") && !TestFiles.exists(root.path + "/empty"))
    }

    @Test func aLeftoverTemporaryFileIsRemovedAndTheCopyRestarts() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/a.bin", bytes: 100_000)
        // This job's own leftover, in the target level's reserved directory.
        try FileManager.default.createDirectory(atPath: disk.path + "/.relocator/tmp", withIntermediateDirectories: true)
        try TestFiles.make(disk.path + "/.relocator/tmp/7-2.part", bytes: 5000)
        #expect(try mover.move(try moveRequest("a.bin", from: root.path, to: disk.path, gen: 2)).bytes == 100_000)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty && TestFiles.partFiles(under: root.path).isEmpty)
        #expect(try TestFiles.sha256(disk.path + "/a.bin") == sum)
    }

    @Test func whenBothCopiesExistTheSourceGoesOnlyIfIdentical() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/same.bin", bytes: 70_000)
        try FileManager.default.copyItem(atPath: root.path + "/same.bin", toPath: disk.path + "/same.bin")
        #expect(try mover.move(moveRequest("same.bin", from: root.path, to: disk.path)).method == .alreadyInPlace)
        #expect(!TestFiles.exists(root.path + "/same.bin"))
        #expect(try TestFiles.sha256(disk.path + "/same.bin") == sum)

        let mine = try TestFiles.make(root.path + "/differs.bin", bytes: 1000)
        let theirs = try TestFiles.make(disk.path + "/differs.bin", bytes: 1000)
        #expect { try mover.move(moveRequest("differs.bin", from: root.path, to: disk.path)) } throws: {
            moveError($0, .destinationConflict) && ($0 as? MoveError)?.isPermanent == true
        }
        #expect(try TestFiles.sha256(root.path + "/differs.bin") == mine)
        #expect(try TestFiles.sha256(disk.path + "/differs.bin") == theirs)
    }

    /// Records name their algorithm; a bare 64-hex record (written before algorithms were named)
    /// is a SHA-256 and still verifies.
    @Test func aPublishedFileWhoseSourceIsGoneIsCheckedAgainstTheRecordedChecksum() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        let sum = try TestFiles.make(gold + "/done.bin", bytes: 4096)
        try FileManager.default.createDirectory(atPath: bronze, withIntermediateDirectories: true)
        let xxh = try xxh128(gold + "/done.bin")
        #expect(try mover.move(moveRequest("done.bin", from: bronze, to: gold, expected: xxh))
            == MoveResult(bytes: 4096, checksum: xxh, method: .alreadyInPlace, foundIn: "to"))
        let old = try Checksum(parsing: sum)
        #expect(old.algorithm == .sha256)
        #expect(try mover.move(moveRequest("done.bin", from: bronze, to: gold, expected: old)).checksum == old)
        for wrong in [try Checksum(parsing: String(repeating: "0", count: 64)), try Checksum(algorithm: .xxh128, hex: String(repeating: "0", count: 32))] {
            #expect { try mover.move(moveRequest("done.bin", from: bronze, to: gold, expected: wrong)) } throws: {
                moveError($0, .destinationConflict)
            }
        }
        #expect(try TestFiles.sha256(gold + "/done.bin") == sum)
    }

    @Test func aSourceMissingEverywhereIsPermanentNamesEveryPlaceAndOneOnAnotherDiskIsFound() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, silver, gold) = (root.path + "/bronze", root.path + "/silver", root.path + "/gold")
        for dir in [bronze, silver, gold] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        #expect { try mover.move(moveRequest("nowhere.mp4", from: bronze, to: gold, others: [silver])) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .sourceMissing && error.isPermanent
                && error.description == "source_missing: nowhere.mp4 is on no level's disk (looked in from (\(bronze)), other0 (\(silver)), to (\(gold)))"
        }
        let sum = try TestFiles.make(silver + "/strayed.mp4", bytes: 1234)
        let result = try mover.move(moveRequest("strayed.mp4", from: bronze, to: gold, others: [silver]))
        #expect(result.foundIn == "other0" && result.method == .linked)
        #expect(!TestFiles.exists(silver + "/strayed.mp4") && TestFiles.exists(gold + "/strayed.mp4"))
        #expect(try TestFiles.sha256(gold + "/strayed.mp4") == sum)
    }

    /// An earlier delivery took the file from another level than the recorded one and published it,
    /// then failed before removing that source: delivered again, the move finds the copy left on the
    /// other level and removes it (identical), instead of taking the published copy alone for done.
    @Test func aPublishedCopyTakenFromAnotherLevelLeavesNoCopyBehindWhenDeliveredAgain() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let (bronze, silver) = (root.path + "/bronze", root.path + "/silver")
        for dir in [bronze, silver] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let sum = try TestFiles.make(bronze + "/strayed.bin", bytes: 200_000)
        try FileManager.default.copyItem(atPath: bronze + "/strayed.bin", toPath: disk.path + "/strayed.bin")
        // The job says silver; the file is on bronze and already published on the target.
        let result = try mover.move(moveRequest("strayed.bin", from: silver, to: disk.path, others: [bronze], expected: try xxh128(bronze + "/strayed.bin")))
        #expect(result.method == .alreadyInPlace && result.foundIn == "other0")
        #expect(!TestFiles.exists(bronze + "/strayed.bin"))
        #expect(try TestFiles.sha256(disk.path + "/strayed.bin") == sum)
    }

    @Test func symlinksThatCouldLeaveTheLevelDirectoryAreRefused() throws {
        let root = try TemporaryDirectory()
        let outside = try TemporaryDirectory("relocator-outside")
        defer { root.remove(); outside.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        for dir in [bronze, gold] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try TestFiles.make(outside.path + "/secret", bytes: 100)
        let before = try DirectorySnapshot(outside.path)
        symlink(outside.path + "/secret", bronze + "/link.mp4")
        #expect { try mover.move(moveRequest("link.mp4", from: bronze, to: gold)) } throws: {
            ($0 as? MoveError)?.description == "unsafe_path: from/link.mp4 is a symbolic link; a filename must stay inside its level directory"
        }
        symlink(outside.path, bronze + "/sub")
        #expect { try mover.move(moveRequest("sub/secret", from: bronze, to: gold)) } throws: {
            ($0 as? MoveError)?.description == "unsafe_path: from/sub is a symbolic link; a filename must stay inside its level directory"
                && ($0 as? MoveError)?.isPermanent == true
        }
        #expect(try DirectorySnapshot(outside.path) == before)
        #expect(try TestFiles.levelContents(gold).isEmpty)
    }

    @Test func aFullDiskIsATransientNoSpaceErrorAndLeavesNothingBehind() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/big.bin", bytes: 3 * 1024 * 1024)
        #expect { try mover.move(moveRequest("big.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .noSpace && !error.isPermanent && error.description.contains("ENOSPC")
        }
        #expect(try TestFiles.sha256(root.path + "/big.bin") == sum)
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
    }

    /// On a tmpfs nothing is reserved up front (it would allocate every page before the copy
    /// starts), but its free room is checked: a file bigger than it fails before a byte is written.
    @Test func aTmpfsTooSmallFailsBeforeAnyByteIsWritten() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/big.bin", bytes: 3 * 1024 * 1024)
        let writes = Recorder<Int64>()
        #expect { try mover.move(moveRequest("big.bin", from: root.path, to: disk.path), hooks: MoveHooks(willWrite: { writes.append($0) })) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .noSpace && error.description.contains("cannot reserve 3145728 bytes for") && error.description.contains("ENOSPC")
        }
        #expect(writes.all.isEmpty)
        #expect(try TestFiles.sha256(root.path + "/big.bin") == sum)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty)
    }

    @Test func aReadOnlyDestinationIsTransientAndWorksOnceWritable() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024, readOnly: true)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/x.bin", bytes: 10_000)
        #expect { try mover.move(moveRequest("x.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .readOnly && !error.isPermanent && error.description.contains("EROFS")
        }
        try disk.remount(readOnly: false)
        #expect(try mover.move(moveRequest("x.bin", from: root.path, to: disk.path)).bytes == 10_000)
        #expect(try TestFiles.sha256(disk.path + "/x.bin") == sum)
    }

    @Test func aCancelledCopyRemovesItsPartFileAndKeepsTheSource() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 8192)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/c.bin", bytes: 1_000_000)
        nonisolated(unsafe) var chunks = 0
        #expect { try mover.move(moveRequest("c.bin", from: root.path, to: disk.path), hooks: MoveHooks(shouldStop: { chunks += 1; return chunks > 3 })) } throws: {
            moveError($0, .cancelled)
        }
        #expect(try TestFiles.sha256(root.path + "/c.bin") == sum)
        #expect(try TestFiles.levelContents(disk.path).isEmpty)
    }

    struct Crash: Error {}

    /// A crash after any step, then the same job delivered again: the move completes, the file
    /// exists exactly once with its bytes, no temporary file is left.
    @Test(arguments: MoveStep.allCases)
    func aCrashAfterAnyStepIsFinishedByTheNextDelivery(step: MoveStep) throws {
        for crossDevice in [true, false] {
            let root = try TemporaryDirectory()
            let disk = try TmpfsMount(sizeKiB: 4096)
            defer { root.remove(); disk.remove() }
            let source = root.path + "/src"
            let target = crossDevice ? disk.path : root.path + "/dst"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            let sum = try TestFiles.make(source + "/f.bin", bytes: 200_000)
            let crashing = FileMover(chunkSize: 64 * 1024, faults: MoveFaults(onStep: { if $0 == step { throw Crash() } }))
            nonisolated(unsafe) var recorded: Checksum?
            do {
                _ = try crashing.move(moveRequest("f.bin", from: source, to: target), hooks: MoveHooks(willPublish: { checksum, _ in recorded = checksum }))
            } catch is Crash {}
            let result = try mover.move(moveRequest("f.bin", from: source, to: target, gen: 1, expected: recorded))
            #expect(try result.checksum == xxh128(target + "/f.bin"), "step \(step), cross-device \(crossDevice)")
            #expect(recorded == nil || recorded == result.checksum)
            #expect(try TestFiles.sha256(target + "/f.bin") == sum)
            #expect(!TestFiles.exists(source + "/f.bin"), "step \(step), cross-device \(crossDevice)")
            #expect(TestFiles.partFiles(under: target).isEmpty)
        }
    }

    @Test func aByteCorruptedBeforeReadBackIsCaughtAndNothingIsPublished() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/v.bin", bytes: 500_000)
        for algorithm in ChecksumAlgorithm.allCases {
            let corrupting = FileMover(algorithm: algorithm, faults: MoveFaults(corruptBeforeReadBack: { true }))
            #expect { try corrupting.move(moveRequest("v.bin", from: root.path, to: disk.path)) } throws: { error in
                guard let error = error as? MoveError else { return false }
                return error.kind == .checksumMismatch && !error.isPermanent
            }
            #expect(try TestFiles.levelContents(disk.path).isEmpty)
            #expect(try TestFiles.sha256(root.path + "/v.bin") == sum)
        }
        let moved = try mover.move(moveRequest("v.bin", from: root.path, to: disk.path))
        #expect(try moved.checksum == xxh128(disk.path + "/v.bin"))
        #expect(try TestFiles.sha256(disk.path + "/v.bin") == sum)
    }

    /// A second delivery of the same job (after a false reap) replaces the temporary file's name
    /// mid-copy: this delivery never publishes the other's bytes nor removes the other's file, and
    /// keeps the source; it fails with a transient error and the job is tried again.
    @Test func aTemporaryFileReplacedMidCopyDoesNotGetPublished() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/r.bin", bytes: 300_000)
        let part = disk.path + "/.relocator/tmp/7-1.part"
        let intruding = FileMover(faults: MoveFaults(onStep: { step in
            guard step == .verified else { return }
            unlink(part)
            try Data(repeating: 0x41, count: 1000).write(to: URL(fileURLWithPath: part))
        }))
        #expect { try intruding.move(moveRequest("r.bin", from: root.path, to: disk.path)) } throws: {
            moveError($0, .ioError) && ($0 as? MoveError)?.isPermanent == false
        }
        #expect(!TestFiles.exists(disk.path + "/r.bin"))
        #expect(TestFiles.exists(part), "the other delivery's file is not ours to remove")
        #expect(try TestFiles.sha256(root.path + "/r.bin") == sum)
    }

    /// The target's disk is swapped after the copy is published (another disk mounted over its
    /// path): the source is not removed — the only copy left would be on a disk no longer at the
    /// level's path. The move waits (`level_unavailable`, no attempt counted).
    @Test func theSourceStaysWhenTheTargetsDiskIsSwappedAfterPublishing() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        let coveredBy = Mutex(0)
        defer {
            for _ in 0..<coveredBy.withLock({ $0 }) { _ = try? ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", disk.path]) }
            root.remove()
            disk.remove()
        }
        let sum = try TestFiles.make(root.path + "/u.bin", bytes: 100_000)
        let swapping = FileMover(faults: MoveFaults(onStep: { step in
            guard step == .targetDirectorySynced else { return }
            let mounted = try ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=1024k", "tmpfs", disk.path])
            guard mounted.status == 0 else { throw POSIXError(.EIO) }
            coveredBy.withLock { $0 += 1 }
        }))
        #expect { try swapping.move(moveRequest("u.bin", from: root.path, to: disk.path)) } throws: {
            moveError($0, .levelUnavailable)
        }
        #expect(coveredBy.withLock { $0 } == 1)
        #expect(try TestFiles.sha256(root.path + "/u.bin") == sum, "the source stays")
    }

    @Test func aDestinationPublishedMeanwhileWithTheSameBytesCountsAsDone() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/s.bin", bytes: 100_000)
        let racing = FileMover(faults: MoveFaults(onStep: { step in
            if step == .verified { try FileManager.default.copyItem(atPath: root.path + "/s.bin", toPath: disk.path + "/s.bin") }
        }))
        let result = try racing.move(moveRequest("s.bin", from: root.path, to: disk.path))
        let published = try xxh128(disk.path + "/s.bin")
        #expect(result.method == .alreadyInPlace && result.checksum == published)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty && !TestFiles.exists(root.path + "/s.bin"))
        #expect(try TestFiles.sha256(disk.path + "/s.bin") == sum)
    }

    @Test func errorKindsAreSnakeCaseCodesAndClassified() {
        let permanent: [MoveError.Kind] = [.invalidFilename, .unsafePath, .unknownLevel, .sourceMissing, .notRegularFile, .destinationConflict,
                                           .undecodableJob, .doesNotFit]
        let transient: [MoveError.Kind] = [.sourceChanged, .noSpace, .permissionDenied, .readOnly, .ioError, .checksumMismatch, .cancelled, .leaseLost,
                                           .contentLocked, .levelUnavailable, .transferTLS]
        #expect(Set(permanent + transient).count == MoveError.Kind.allCases.count)
        #expect(permanent.allSatisfy { MoveError($0, "x").isPermanent })
        #expect(transient.allSatisfy { !MoveError($0, "x").isPermanent })
        #expect(MoveError.Kind.allCases.map(\.rawValue) == [
            "invalid_filename", "unsafe_path", "unknown_level", "source_missing", "not_regular_file", "destination_conflict",
            "source_changed", "no_space", "permission_denied", "read_only", "io_error", "checksum_mismatch", "cancelled", "lease_lost",
            "content_locked", "level_unavailable", "undecodable_job", "does_not_fit", "transfer_tls",
        ])
        #expect(MoveError(.sourceChanged, "gold/a changed").description == "source_changed: gold/a changed")
    }
}
