import RelocatorCore
import Testing

@Suite struct DeadLetterSelectionTests {
    @Test func theCidsWithoutADeadJobAreNamedOnceInTheOrderAsked() {
        let dead = ["7:1764000000000", "9:1764000000001", "not-an-id"]
        #expect(DeadLetterSelection.missing([7, 9], deadIDs: dead).isEmpty)
        #expect(DeadLetterSelection.missing([99, 7, 100, 99], deadIDs: dead) == [99, 100])
        #expect(DeadLetterSelection.missing([1], deadIDs: []) == [1])
    }

    @Test func theMessageNamesTheCidsAndSaysNothingChanged() {
        #expect(DeadLetterSelection.message(missing: [99, 100], action: "replayed") == "no dead job for cid 99, 100; nothing replayed")
    }
}
