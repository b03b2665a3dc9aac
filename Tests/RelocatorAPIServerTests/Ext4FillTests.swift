import FileMover
import Foundation
import HummingbirdTesting
import JobQueue
import RelocatorCore
import RelocatorMetrics
import RelocatorServices
import TestSupport
import Testing
@testable import RelocatorAPI

/// A level's fill is `df`'s Use%, used / (used + available), wherever it is shown or compared: on
/// a real ext4 (a loop mount: root) whose reserved blocks make used / size another number, its report
/// carried by a heartbeat through Redis. (RelocatorAPITests' FillTests: the same from a report with
/// reserved blocks, without a server.)
@Suite(.serialized) struct Ext4FillTests {
    /// `df -B1 --output=size,used,avail,pcent` of a path, as numbers.
    static func df(_ path: String) throws -> (size: Int64, used: Int64, available: Int64, usePercent: Int) {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/bin/df"), ["-B1", "--output=size,used,avail,pcent", path])
        let fields = result.stdout.split(separator: "\n").last?.split(separator: " ").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
        guard result.status == 0, fields.count == 4, let size = Int64(fields[0]), let used = Int64(fields[1]), let available = Int64(fields[2]),
              let percent = Int(fields[3].dropLast()) else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "df \(path): \(result.stdout) \(result.stderr)"])
        }
        return (size, used, available, percent)
    }

    @Test func aLevelsFillIsDfsUseOnAnExt4WithReservedBlocksInThePlanTheDashboardAndTheMetrics() async throws {
        let disk = try Ext4LoopMount(sizeMiB: 32, reservedPercent: 20)
        defer { disk.remove() }
        try TestFiles.make(disk.path + "/big.bin", bytes: 12 << 20)
        sync()
        let api = try APIFixture()
        defer { api.tearDown() }

        // What a worker reports of the level (statvfs), and what df says of it.
        let report = try #require(DiskReport.current(LevelDirectories([("gold", disk.path)])).levels["gold"])
        let df = try Self.df(disk.path)
        #expect(report.used == df.used && report.free == df.available && report.size == df.size)
        let fill = Double(df.used) * 100 / Double(df.used + df.available)
        let ofSize = Double(df.used) * 100 / Double(df.size)
        // The reserved blocks are neither used nor available: the two measures differ clearly.
        #expect(fill - ofSize > 5, "fill \(fill) %, of the size \(ofSize) %")
        #expect(Int(fill.rounded(.up)) == df.usePercent)
        #expect(abs(Placement.Usage(report).percent - fill) < 1e-9)

        // A worker's heartbeat carries the report, as a running worker's does.
        let beat = Heartbeat(id: "w1", kind: .worker, host: "box", levels: ["gold"], beatAt: JobQueue.nowMilliseconds(),
                             disks: DiskReport(levels: ["gold": report]))
        // (For hours: a loaded machine has taken over ten minutes from here to the last request.)
        _ = try RedisJobQueue(queue: api.queue, redis: api.redis).maintain(MaintenanceRequest(beat: beat, ttl: .seconds(6 * 3600)))

        // The plan.
        let plan = try await api.service.plan()
        let gold = try #require(plan.levels.first { $0.level == "gold" })
        #expect(abs((gold.percent ?? -1) - fill) < 1e-9 && abs((gold.projectedPercent ?? -1) - fill) < 1e-9)

        let shown = fill.formatted(decimals: 1)
        // A registry of this test's own: the process's is shared with tests that run meanwhile.
        try await api.test(metrics: PrometheusMetrics()) { client in
            // The dashboard's overview and level table draw it.
            let overview = try await client.get("/ui")
            #expect(overview.text.contains(#"data-percent="\#(shown)""#) && overview.text.contains("\(shown) %"))
            #expect(try await client.get("/ui/levels").text.contains(#"data-percent="\#(shown)""#))
            // The metrics give it as a ratio.
            let scrape = try await client.get("/metrics").text
            let line = try #require(scrape.split(separator: "\n").first { $0.hasPrefix(#"relocator_level_fill_ratio{level="gold"}"#) })
            let value = try #require(Double(line.split(separator: " ").last ?? ""))
            #expect(abs(value - fill / 100) < 1e-9)
        }
    }
}
