import FileMover
import Foundation
import RelocatorCore
import Testing
import TestSupport

/// Real files between real directories; a tmpfs mount where a second filesystem, a full disk or a
/// read-only one is needed.
@Suite struct FileMoverTests {
    let mover = FileMover(chunkSize: 64 * 1024)

    func request(_ name: String, from source: String, to target: String, others: [String] = [], gen: Int64 = 1,
                 expected: String? = nil) throws -> MoveRequest {
        MoveRequest(filename: try Filename(name), sourceDirectory: source, targetDirectory: target,
                    otherDirectories: others, cid: 7, gen: gen, expectedChecksum: expected)
    }

    @Test func onOneFilesystemTheNameMovesAndTheChecksumIsRecorded() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        let sum = try TestFiles.make(bronze + "/g.mp4", bytes: 300_000)
        let result = try mover.move(request("g.mp4", from: bronze, to: gold))
        #expect(result == MoveResult(bytes: 300_000, checksum: sum, method: .renamed))
        #expect(!TestFiles.exists(bronze + "/g.mp4"))
        #expect(try TestFiles.sha256(gold + "/g.mp4") == sum)
        #expect(TestFiles.mode(gold + "/g.mp4") == 0o640)
    }

    @Test func acrossFilesystemsTheCopyIsVerifiedAndKeepsModeAndTime() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 16 * 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/movies/2024/big.bin", bytes: 5_000_001, mode: 0o604)
        var published: (String, Int64)?
        let result = try mover.move(request("movies/2024/big.bin", from: root.path, to: disk.path), beforePublish: { published = ($0, $1) })
        #expect(result == MoveResult(bytes: 5_000_001, checksum: sum, method: .copied))
        #expect(published?.0 == sum && published?.1 == 5_000_001)
        #expect(try TestFiles.sha256(disk.path + "/movies/2024/big.bin") == sum)
        #expect(TestFiles.mode(disk.path + "/movies/2024/big.bin") == 0o604)
        #expect(TestFiles.mtime(disk.path + "/movies/2024/big.bin") == 1_600_000_000)
        #expect(!TestFiles.exists(root.path + "/movies/2024/big.bin"))
        #expect(TestFiles.partFiles(under: disk.path).isEmpty)
    }

    @Test func anEmptyFileMovesToo() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/empty", bytes: 0)
        #expect(try mover.move(request("empty", from: root.path, to: disk.path)).checksum == sum)
        #expect(TestFiles.exists(disk.path + "/empty") && !TestFiles.exists(root.path + "/empty"))
    }

    @Test func aLeftoverPartFileIsRemovedAndTheCopyRestarts() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/a.bin", bytes: 100_000)
        // This gen's own leftover, and one of an older gen recorded in the job, in another directory.
        try TestFiles.make(disk.path + "/.a.bin.relocator-7-2.part", bytes: 5000)
        try TestFiles.make(root.path + "/other/.a.bin.relocator-7-1.part", bytes: 10)
        var req = try request("a.bin", from: root.path, to: disk.path, gen: 2)
        req.stalePart = root.path + "/other/.a.bin.relocator-7-1.part"
        var recorded: String?
        #expect(try mover.move(req, beforeCopy: { recorded = $0 }).checksum == sum)
        #expect(recorded == disk.path + "/.a.bin.relocator-7-2.part")
        #expect(TestFiles.partFiles(under: disk.path).isEmpty && TestFiles.partFiles(under: root.path).isEmpty)
        #expect(try TestFiles.sha256(disk.path + "/a.bin") == sum)
    }

    @Test func whenBothCopiesExistTheSourceGoesOnlyIfIdentical() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/same.bin", bytes: 70_000)
        try FileManager.default.copyItem(atPath: root.path + "/same.bin", toPath: disk.path + "/same.bin")
        #expect(try mover.move(request("same.bin", from: root.path, to: disk.path)).method == .alreadyInPlace)
        #expect(!TestFiles.exists(root.path + "/same.bin"))
        #expect(try TestFiles.sha256(disk.path + "/same.bin") == sum)

        let mine = try TestFiles.make(root.path + "/differs.bin", bytes: 1000)
        let theirs = try TestFiles.make(disk.path + "/differs.bin", bytes: 1000)
        #expect { try mover.move(request("differs.bin", from: root.path, to: disk.path)) } throws: {
            ($0 as? MoveError)?.kind == .destinationConflict && ($0 as? MoveError)?.isPermanent == true
        }
        #expect(try TestFiles.sha256(root.path + "/differs.bin") == mine)
        #expect(try TestFiles.sha256(disk.path + "/differs.bin") == theirs)
    }

    @Test func aPublishedFileWhoseSourceIsGoneIsCheckedAgainstTheRecordedChecksum() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        let sum = try TestFiles.make(gold + "/done.bin", bytes: 4096)
        try FileManager.default.createDirectory(atPath: bronze, withIntermediateDirectories: true)
        #expect(try mover.move(request("done.bin", from: bronze, to: gold, expected: sum)) == MoveResult(bytes: 4096, checksum: sum, method: .alreadyInPlace))
        #expect { try mover.move(request("done.bin", from: bronze, to: gold, expected: String(repeating: "0", count: 64))) } throws: {
            ($0 as? MoveError)?.kind == .destinationConflict
        }
        #expect(try TestFiles.sha256(gold + "/done.bin") == sum)
    }

    @Test func aSourceMissingEverywhereIsPermanentAndOneOnAnotherDiskIsFound() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let (bronze, silver, gold) = (root.path + "/bronze", root.path + "/silver", root.path + "/gold")
        for dir in [bronze, silver, gold] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        #expect { try mover.move(request("nowhere.mp4", from: bronze, to: gold, others: [silver])) } throws: {
            ($0 as? MoveError)?.kind == .sourceMissing && ($0 as? MoveError)?.isPermanent == true
        }
        let sum = try TestFiles.make(silver + "/strayed.mp4", bytes: 1234)
        #expect(try mover.move(request("strayed.mp4", from: bronze, to: gold, others: [silver])).checksum == sum)
        #expect(!TestFiles.exists(silver + "/strayed.mp4") && TestFiles.exists(gold + "/strayed.mp4"))
    }

    @Test func symlinksThatCouldLeaveTheLevelDirectoryAreRefused() throws {
        let root = try TemporaryDirectory()
        let outside = try TemporaryDirectory("relocator-outside")
        defer { root.remove(); outside.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        for dir in [bronze, gold] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let secret = try TestFiles.make(outside.path + "/secret", bytes: 100)
        symlink(outside.path + "/secret", bronze + "/link.mp4")
        #expect { try mover.move(request("link.mp4", from: bronze, to: gold)) } throws: {
            ($0 as? MoveError)?.kind == .notRegularFile
        }
        symlink(outside.path, bronze + "/sub")
        #expect { try mover.move(request("sub/secret", from: bronze, to: gold)) } throws: {
            ($0 as? MoveError)?.kind == .invalidFilename
        }
        #expect(try TestFiles.sha256(outside.path + "/secret") == secret)
        #expect((try FileManager.default.contentsOfDirectory(atPath: gold)).isEmpty)
    }

    @Test func aFullDiskIsATransientNoSpaceErrorAndLeavesNothingBehind() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/big.bin", bytes: 3 * 1024 * 1024)
        #expect { try mover.move(request("big.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .noSpace && !error.isPermanent && error.description.contains("ENOSPC")
        }
        #expect(try TestFiles.sha256(root.path + "/big.bin") == sum)
        #expect((try FileManager.default.contentsOfDirectory(atPath: disk.path)).isEmpty)
    }

    @Test func aReadOnlyDestinationIsTransientAndWorksOnceWritable() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 1024, readOnly: true)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/x.bin", bytes: 10_000)
        #expect { try mover.move(request("x.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .readOnly && !error.isPermanent && error.description.contains("EROFS")
        }
        try disk.remount(readOnly: false)
        #expect(try mover.move(request("x.bin", from: root.path, to: disk.path)).checksum == sum)
    }

    @Test func aCancelledCopyRemovesItsPartFileAndKeepsTheSource() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 8192)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/c.bin", bytes: 1_000_000)
        nonisolated(unsafe) var chunks = 0
        #expect { try mover.move(request("c.bin", from: root.path, to: disk.path), shouldStop: { chunks += 1; return chunks > 3 }) } throws: {
            ($0 as? MoveError)?.kind == .cancelled
        }
        #expect(try TestFiles.sha256(root.path + "/c.bin") == sum)
        #expect((try FileManager.default.contentsOfDirectory(atPath: disk.path)).isEmpty)
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
            nonisolated(unsafe) var recorded: String?
            do {
                _ = try crashing.move(request("f.bin", from: source, to: target), beforePublish: { checksum, _ in recorded = checksum })
            } catch is Crash {}
            let result = try mover.move(request("f.bin", from: source, to: target, gen: 1, expected: recorded))
            #expect(result.checksum == sum, "step \(step), cross-device \(crossDevice)")
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
        let corrupting = FileMover(faults: MoveFaults(corruptBeforeReadBack: { true }))
        #expect { try corrupting.move(request("v.bin", from: root.path, to: disk.path)) } throws: { error in
            guard let error = error as? MoveError else { return false }
            return error.kind == .checksumMismatch && !error.isPermanent
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: disk.path)).isEmpty)
        #expect(try TestFiles.sha256(root.path + "/v.bin") == sum)
        #expect(try mover.move(request("v.bin", from: root.path, to: disk.path)).checksum == sum)
    }

    /// A second delivery of the same job (after a false reap) replaces the temporary file's name
    /// mid-copy: this delivery never publishes the other's bytes nor removes the other's file, and
    /// keeps the source; it fails with a transient error and the job is tried again.
    @Test func aTemporaryFileReplacedMidCopyDoesNotGetPublished() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/r.bin", bytes: 300_000)
        let part = disk.path + "/.r.bin.relocator-7-1.part"
        let intruding = FileMover(faults: MoveFaults(onStep: { step in
            guard step == .verified else { return }
            unlink(part)
            FileManager.default.createFile(atPath: part, contents: Data(repeating: 0x41, count: 1000))
        }))
        #expect { try intruding.move(request("r.bin", from: root.path, to: disk.path)) } throws: {
            ($0 as? MoveError)?.kind == .io && ($0 as? MoveError)?.isPermanent == false
        }
        #expect(!TestFiles.exists(disk.path + "/r.bin"))
        #expect(TestFiles.exists(part), "the other delivery's file is not ours to remove")
        #expect(try TestFiles.sha256(root.path + "/r.bin") == sum)
    }

    @Test func aDestinationPublishedMeanwhileWithTheSameBytesCountsAsDone() throws {
        let root = try TemporaryDirectory()
        let disk = try TmpfsMount(sizeKiB: 4096)
        defer { root.remove(); disk.remove() }
        let sum = try TestFiles.make(root.path + "/s.bin", bytes: 100_000)
        let racing = FileMover(faults: MoveFaults(onStep: { step in
            if step == .verified { _ = try? FileManager.default.copyItem(atPath: root.path + "/s.bin", toPath: disk.path + "/s.bin") }
        }))
        #expect(try racing.move(request("s.bin", from: root.path, to: disk.path)).checksum == sum)
        #expect(TestFiles.partFiles(under: disk.path).isEmpty && !TestFiles.exists(root.path + "/s.bin"))
        #expect(try TestFiles.sha256(disk.path + "/s.bin") == sum)
    }

    @Test func errnoClassification() {
        #expect(MoveError(.permission, "x").isPermanent == false)
        #expect(MoveError(.sourceMissing, "x").isPermanent)
        #expect(MoveError(.invalidFilename, "x").isPermanent)
        #expect(MoveError(.checksumMismatch, "x").isPermanent == false)
    }
}
