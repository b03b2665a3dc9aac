import Testing
@testable import RelocatorServices

/// What reconcile concludes of a content when levels lie on several hosts: decided without I/O
/// from where this host found the file and what the other hosts' workers answered.
@Suite struct HostsVerdictTests {
    let remote: Set<String> = ["gold"]

    func look(found: [String: Int64] = [:], looked: Set<String> = ["gold"]) -> RemoteLook {
        RemoteLook(found: found, looked: looked)
    }

    @Test func theOtherHostsAreAskedOnlyWhenThisHostCannotDecide() {
        // Where the database says, on this host: nothing to ask.
        #expect(!HostsVerdict.needsAsking(database: "bronze", local: ["bronze"], remoteLevels: remote))
        // On another host's level by the database, nothing here: that host checks it.
        #expect(!HostsVerdict.needsAsking(database: "gold", local: [], remoteLevels: remote))
        #expect(HostsVerdict.decide(database: "gold", local: [], remoteLevels: remote, remote: nil) == .elsewhere)
        // Here on another level than the database's own here: decided here.
        #expect(!HostsVerdict.needsAsking(database: "bronze", local: ["silver"], remoteLevels: remote))
        #expect(HostsVerdict.decide(database: "bronze", local: ["silver"], remoteLevels: remote, remote: nil) == .local)
        // Not here where the database says: it may be on the other host.
        #expect(HostsVerdict.needsAsking(database: "bronze", local: [], remoteLevels: remote))
        // Here, while the database says another host's level: is it there too?
        #expect(HostsVerdict.needsAsking(database: "gold", local: ["bronze"], remoteLevels: remote))
        // One host only: never.
        #expect(!HostsVerdict.needsAsking(database: "bronze", local: [], remoteLevels: []))
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: [], remote: nil) == .local)
    }

    @Test func aFileOnNoLevelOfAnyHostIsMissingOnlyOnceEveryLevelWasLookedAt() {
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: remote, remote: look()) == .missing)
        // The other host did not answer for gold: nothing decided.
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: remote, remote: look(looked: [])) == .unverified(["gold"]))
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: ["gold", "platinum"],
                                    remote: look(looked: ["gold"])) == .unverified(["platinum"]))
    }

    @Test func oneCopyOnAnotherHostsLevelIsAWrongLevelThere() {
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: remote, remote: look(found: ["gold": 5])) == .wrongLevelElsewhere("gold"))
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: ["gold", "platinum"],
                                    remote: look(found: ["platinum": 5], looked: ["gold", "platinum"])) == .wrongLevelElsewhere("platinum"))
        // Not while another host's level was not looked at: it may hold a second copy.
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: ["gold", "platinum"],
                                    remote: look(found: ["gold": 5], looked: ["gold"])) == .unverified(["platinum"]))
        // An answer naming a level that is not another host's counts for nothing.
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: remote, remote: look(found: ["bronze": 5])) == .missing)
    }

    @Test func copiesOnSeveralHostsAreLeftForAnOperator() {
        #expect(HostsVerdict.decide(database: "gold", local: ["bronze"], remoteLevels: remote, remote: look(found: ["gold": 5]))
                == .copies(local: ["bronze"], remote: ["gold"]))
        #expect(HostsVerdict.decide(database: "bronze", local: [], remoteLevels: ["gold", "platinum"],
                                    remote: look(found: ["gold": 5, "platinum": 5], looked: ["gold", "platinum"]))
                == .copies(local: [], remote: ["gold", "platinum"]))
    }

    @Test func aFileHereOnlyWhileTheDatabaseSaysAnotherHostIsDecidedHereOnceThatHostLacksIt() {
        #expect(HostsVerdict.decide(database: "gold", local: ["bronze"], remoteLevels: remote, remote: look()) == .local)
        #expect(HostsVerdict.decide(database: "gold", local: ["bronze"], remoteLevels: remote, remote: look(looked: [])) == .unverified(["gold"]))
    }
}
