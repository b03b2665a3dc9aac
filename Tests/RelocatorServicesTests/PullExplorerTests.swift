import Testing

/// The cross-host move protocol over every interleaving of its deliveries and removal requests
/// (see `PullExplorer`).
@Suite struct PullExplorerTests {
    /// Two deliveries of one job — the first may be reaped at any step while it still acts, or
    /// killed — with the answer of a removal lost, and a count sending the file back, at any point.
    @Test func everyInterleavingOfTwoPullsKeepsACopyAndEndsWithOneWhereSQLSays() {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 1, counts: 1), "2 deliveries")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// The same with the file written to once at any point: the current version is never lost.
    @Test func aWriteAtAnyPointLosesNoVersion() {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 1, counts: 1, writes: 1), "2 deliveries, a write")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// The source's worker killed while it serves a removal, and a delivery killed.
    @Test func theSourcesWorkerKilledWhileItRemoves() {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, endpointCrashes: 1, lostAnswers: 0, counts: 1, writes: 1),
                              "2 deliveries, the source's worker killed, a write")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// Three deliveries — two of them reaped while they act — within a bound on preemptions.
    @Test func threeDeliveriesWithinAPreemptionBound() {
        let report = Self.run(PullExplorer.Bounds(faulty: 3, clean: 4, reaps: 2, crashes: 1, lostAnswers: 1, counts: 1, writes: 1, preemptions: 3),
                              "3 deliveries, preemptions ≤ 3")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// The explorer has teeth: each change to the protocol below loses a copy or a version.
    @Test(arguments: [PullExplorer.Mutant.withdrawOnAnyRefusal, .noReadUnderLock, .noVersionCheck, .noEndpointLock])
    func aWeakenedProtocolIsCaught(mutant: PullExplorer.Mutant) {
        var explorer = PullExplorer(bounds: PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 1, counts: 1, writes: 1),
                                    mutant: mutant)
        let report = explorer.run(from: PullExplorer.start(bounds: explorer.bounds))
        print("pull explorer, mutant \(mutant): \(report.violations.first ?? "no violation")")
        #expect(!report.violations.isEmpty)
    }

    static func run(_ bounds: PullExplorer.Bounds, _ what: String) -> PullExplorer.Report {
        var explorer = PullExplorer(bounds: bounds)
        let report = explorer.run(from: PullExplorer.start(bounds: bounds))
        print("pull explorer, \(what): \(report.states) states, \(report.transitions) transitions, \(report.ends) ends (\(report.conflictEnds) dead letters of a reversed job's two differing copies), \(report.interleavings) interleavings")
        return report
    }
}
