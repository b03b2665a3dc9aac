import Testing

/// The cross-host move protocol over every interleaving of its deliveries and removal requests
/// (see `PullExplorer`).
@Suite struct PullExplorerTests {
    /// Two deliveries of one job — the first may be reaped at any step while it still acts, or
    /// killed — with the answer of a removal lost, and a count sending the file back, at any point.
    @Test func everyInterleavingOfTwoPullsKeepsACopyAndEndsWithOneWhereSQLSays() {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 1, counts: 1), "2 deliveries, an answer lost")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1_000_000)
    }

    /// The same with the file written to once at any point (its second chunk only, or both): the
    /// current version is never lost, and a move whose source changed starts again.
    @Test(arguments: [true, false])
    func aWriteAtAnyPointLosesNoVersion(append: Bool) {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 0, counts: 1, writes: 1,
                                                  appends: append, rewrites: !append),
                              "2 deliveries, a write (\(append ? "the second chunk" : "both chunks"))")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1_000_000)
    }

    /// The source's worker killed while it serves a removal, and a delivery killed.
    @Test func theSourcesWorkerKilledWhileItRemoves() {
        let report = Self.run(PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, endpointCrashes: 1, lostAnswers: 1, counts: 1),
                              "2 deliveries, the source's worker killed, an answer lost")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1_000_000)
    }

    /// Three deliveries — two of them reaped while they act — within a bound on preemptions.
    @Test func threeDeliveriesWithinAPreemptionBound() {
        let report = Self.run(PullExplorer.Bounds(faulty: 3, clean: 4, reaps: 2, crashes: 1, lostAnswers: 0, counts: 1, preemptions: 1),
                              "3 deliveries, preemptions ≤ 1")
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.interleavings > 1000)
    }

    /// The explorer has teeth: each change below loses a copy, or leaves a move whose source was
    /// written to dead with two different copies.
    @Test(arguments: [PullExplorer.Mutant.withdrawOnAnyRefusal, .noVersionCheck, .trustKeptPrefix])
    func aWeakenedProtocolIsCaught(mutant: PullExplorer.Mutant) {
        var explorer = PullExplorer(bounds: PullExplorer.Bounds(faulty: 2, clean: 4, reaps: 1, crashes: 1, lostAnswers: 0, counts: 1, writes: 1,
                                                                appends: false),
                                    mutant: mutant)
        let report = explorer.run(from: PullExplorer.start(bounds: explorer.bounds))
        print("pull explorer, mutant \(mutant): \(report.violations.first ?? "no violation")")
        #expect(!report.violations.isEmpty)
    }

    static func run(_ bounds: PullExplorer.Bounds, _ what: String) -> PullExplorer.Report {
        var explorer = PullExplorer(bounds: bounds)
        let report = explorer.run(from: PullExplorer.start(bounds: bounds))
        print("pull explorer, \(what): \(report.states) states, \(report.transitions) transitions, \(report.ends) ends (\(report.conflictEnds) dead letters of a turned job after a write), \(report.interleavings) interleavings")
        return report
    }
}
