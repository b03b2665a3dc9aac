@testable import FileMover
import Testing

/// The move protocol over every interleaving of its deliveries (see `Explorer`).
@Suite struct ExplorerTests {
    /// Two deliveries of one job — the first may be reaped at any step while it still acts, or
    /// killed — in every interleaving, with a count sending the file back at any point; on one
    /// filesystem and across two.
    @Test(arguments: [false, true])
    func everyInterleavingOfTwoDeliveriesKeepsACopyAndEndsWithOneWhereSQLSays(crossDevice: Bool) {
        var explorer = Explorer(bounds: Explorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, counts: 1))
        let report = explorer.run(from: Explorer.start(crossDevice: crossDevice, bounds: explorer.bounds))
        print("explorer, 2 deliveries, \(crossDevice ? "across filesystems" : "one filesystem"): \(report.states) states, \(report.transitions) transitions, \(report.ends) ends, \(report.interleavings) interleavings")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// Three deliveries — two of them reaped while they act — within a bound on preemptions.
    @Test(arguments: [false, true])
    func threeDeliveriesWithinAPreemptionBoundKeepACopyAndEndWithOne(crossDevice: Bool) {
        var explorer = Explorer(bounds: Explorer.Bounds(faulty: 3, clean: 5, reaps: 2, crashes: 1, counts: 1, preemptions: 3))
        let report = explorer.run(from: Explorer.start(crossDevice: crossDevice, bounds: explorer.bounds))
        print("explorer, 3 deliveries, preemptions ≤ 3, \(crossDevice ? "across filesystems" : "one filesystem"): \(report.states) states, \(report.transitions) transitions, \(report.ends) ends, \(report.interleavings) interleavings")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// The explorer has teeth: without the content lock, two deliveries of a job turned around
    /// each remove the copy the other keeps.
    @Test(arguments: [false, true])
    func withoutTheContentLockACopyIsLost(crossDevice: Bool) {
        var explorer = Explorer(bounds: Explorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 0, counts: 1), ignoreLocks: true)
        let report = explorer.run(from: Explorer.start(crossDevice: crossDevice, bounds: explorer.bounds))
        #expect(!report.violations.isEmpty)
    }
}
