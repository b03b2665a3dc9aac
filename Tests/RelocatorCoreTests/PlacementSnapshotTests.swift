import RelocatorCore
import Testing

/// The placement the rebalancer publishes for the workers: a typed value, its JSON and what a
/// submission takes from it.
@Suite struct PlacementSnapshotTests {
    let levels = LevelRange.defaults

    @Test func itReadsBackFromItsTextUnchanged() throws {
        let snapshot = PlacementSnapshot(levels: levels, policies: ["gold": LevelPolicy(highWater: 80, lowWater: 70, minResidency: 3600)],
                                         halfLife: .seconds(86400), publishedAt: 1_764_000_000_000)
        let text = try snapshot.encoded()
        #expect(text.contains("\"half_life_ms\":86400000") && text.contains("\"published_at\":1764000000000"))
        #expect(try PlacementSnapshot(decoding: text) == snapshot)
    }

    @Test func textThatIsNoSnapshotIsRefused() {
        #expect(throws: (any Error).self) { try PlacementSnapshot(decoding: "gold=3600000") }
        #expect(throws: (any Error).self) { try PlacementSnapshot(decoding: "{\"levels\": 5}") }
    }

    @Test func theCountPolicyHasTheHalfLifeAndThePositiveResidencies() {
        let snapshot = PlacementSnapshot(levels: levels, policies: ["gold": LevelPolicy(minResidency: 60), "silver": LevelPolicy(minResidency: 0),
                                                                    "bronze": LevelPolicy(highWater: 90)],
                                         halfLife: .milliseconds(1500), publishedAt: 0)
        #expect(snapshot.countPolicy == CountPolicy(halfLife: .milliseconds(1500), residencies: ["gold": .seconds(60)]))
        #expect(PlacementSnapshot(levels: levels, policies: [:], halfLife: nil, publishedAt: 0).countPolicy == .none)
    }

    @Test func onlyAPolicyThatSaysSomethingCountsAsOne() {
        #expect(!PlacementSnapshot(levels: levels, policies: ["gold": LevelPolicy()], halfLife: nil, publishedAt: 0).hasPolicies)
        #expect(PlacementSnapshot(levels: levels, policies: ["gold": LevelPolicy(maxMoves: 2)], halfLife: nil, publishedAt: 0).hasPolicies)
    }

    @Test func itsPlacementIsTheTableWithThePolicies() {
        let snapshot = PlacementSnapshot(levels: levels, policies: ["gold": LevelPolicy(priority: 1), "bronze": LevelPolicy(priority: 9)],
                                         halfLife: nil, publishedAt: 0)
        #expect(snapshot.placement.target(count: 20000, current: "bronze")?.level == "gold")
        #expect(snapshot.placement.takingOrder(["gold", "silver", "bronze"]).first == "bronze")
    }
}
