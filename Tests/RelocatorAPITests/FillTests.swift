import Foundation
import HummingbirdTesting
import RelocatorCore
import RelocatorMetrics
import RelocatorServices
import SQLStore
import TestSupport
import Testing
@testable import RelocatorAPI

/// A level's fill is `df`'s Use%, used / (used + available), wherever it is shown or compared: from
/// a report whose reserved blocks (neither used nor available) make used / size another number.
/// (RelocatorAPIServerTests' Ext4FillTests: the report of a real ext4 with reserved blocks, as df
/// reads it, and the plan as the API makes it over Redis and the database.)
@Suite struct FillTests {
    @Test func aLevelsFillIsUsedOfUsedAndAvailableInThePlanTheDashboardAndTheMetrics() async throws {
        // 32 MiB with a fifth reserved: 12 MiB used, 14 MiB available.
        let report = DiskReport.Usage(used: 12 << 20, free: 14 << 20, size: 32 << 20)
        let fill = Double(report.used) * 100 / Double(report.used + report.free)
        let ofSize = Double(report.used) * 100 / Double(report.size)
        #expect(fill - ofSize > 5, "fill \(fill) %, of the size \(ofSize) %")
        #expect(abs(Placement.Usage(report).percent - fill) < 1e-9)

        // A worker's heartbeat carries the report, as a running worker's does.
        let api = MemoryAPI()
        try api.beat(Heartbeat(id: "w1", kind: .worker, host: "box", levels: ["gold"], beatAt: api.now, disks: DiskReport(levels: ["gold": report])))

        // The plan, from the queue's heartbeats and a SQLite file's level table.
        let directory = try TemporaryDirectory("relocator-fill")
        defer { directory.remove() }
        let database = try openDatabase(.sqlite(path: directory.path + "/relocator.sqlite"), access: .create)
        defer { database.close() }
        try Migrator(database: database, migrations: Migration.embedded(dialect: database.dialect)).migrate()
        try LevelStore(database: database).seed(LevelRange.defaults)
        let plan = try Planner(queue: api.queue, database: database, halfLife: nil).plan(full: false)
        let gold = try #require(plan.levels.first { $0.level == "gold" })
        #expect(abs((gold.percent ?? -1) - fill) < 1e-9 && abs((gold.projectedPercent ?? -1) - fill) < 1e-9)

        let shown = fill.formatted(decimals: 1)
        #expect(shown == "46.2")
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
