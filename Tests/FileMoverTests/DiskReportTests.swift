import FileMover
import Foundation
import RelocatorCore
import Testing
import TestSupport

/// A worker's report of its levels' disks names each level's filesystem, so that two levels whose
/// directories share one are known to (a move between them frees nothing on it), and carries it
/// through the heartbeat's fields without changing the `disks` field older readers parse.
@Suite struct DiskReportTests {
    @Test func levelsOnOneFilesystemAreToldFromLevelsOnAnother() throws {
        let disk = try TemporaryDirectory("relocator-fs")
        let memory = try TemporaryDirectory("relocator-fs", under: "/dev/shm")
        defer { disk.remove(); memory.remove() }
        for name in ["gold", "silver"] { try FileManager.default.createDirectory(atPath: disk.path + "/" + name, withIntermediateDirectories: true) }
        let directories = LevelDirectories([("gold", disk.path + "/gold"), ("silver", disk.path + "/silver"), ("bronze", memory.path)])
        let report = DiskReport.current(directories)
        #expect(report.levels["gold"]?.filesystem != nil)
        #expect(report.sameFilesystem("gold", "silver"))
        #expect(!report.sameFilesystem("gold", "bronze"))

        let beat = Heartbeat(id: "w1", kind: .worker, levels: ["bronze", "gold", "silver"], disks: report)
        let read = Heartbeat(id: "w1", fields: beat.fields)
        #expect(read.disks == report)
        #expect(read.disks?.sameFilesystem("gold", "silver") == true)
        // The disks field keeps its three numbers a level.
        let fields = try #require(beat.fields[.disks]).split(separator: ";").map { $0.split(separator: "=")[1].split(separator: ",").count }
        #expect(fields == [3, 3, 3])
        // A report without filesystems (an older worker) says nothing of sharing.
        let older = DiskReport(decoding: try #require(beat.fields[.disks]))
        #expect(!older.sameFilesystem("gold", "silver"))
    }
}
