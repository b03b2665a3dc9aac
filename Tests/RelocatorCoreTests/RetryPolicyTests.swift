import RelocatorCore
import Testing

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(base: .seconds(1), cap: .seconds(300), maxAttempts: 5)

    @Test func delaysDoubleUpToTheCap() {
        #expect((1...10).map { policy.ceiling(afterFailures: $0).milliseconds }
            == [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000])
        #expect(policy.ceiling(afterFailures: 500) == .seconds(300))
        #expect(policy.ceiling(afterFailures: .min) == .seconds(1) && policy.ceiling(afterFailures: .max) == .seconds(300), "no trap at the bounds")
    }

    @Test func jitterStaysWithinHalfToWhole() {
        #expect(policy.delay(afterFailures: 3, unit: 0) == .seconds(2))
        #expect(policy.delay(afterFailures: 3, unit: 1) == .seconds(4))
        #expect(policy.delay(afterFailures: 3, unit: 0.5) == .seconds(3))
        for _ in 0..<100 {
            let drawn = policy.delay(afterFailures: 2)
            #expect(drawn >= .seconds(1) && drawn <= .seconds(2))
        }
    }

    @Test func attemptsAreBounded() {
        #expect(policy.allowsRetry(afterFailures: 4))
        #expect(!policy.allowsRetry(afterFailures: 5))
    }
}

@Suite struct FilenameTests {
    @Test(arguments: ["g.mp4", "movies/2024/g.mp4", "with space and 'quote'.mkv", "日本語.mp4", "..hidden", "a..b"])
    func acceptsRelativeNames(name: String) throws {
        #expect(try Filename(name).value == name)
    }

    @Test(arguments: ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "nul\0byte", "trailing/"])
    func refusesNamesThatCouldEscape(name: String) {
        #expect(throws: Filename.Invalid.self) { try Filename(name) }
    }

    /// A `/` that is one character with a combining mark, a zero-width joiner or a variation
    /// selector after it, or with a prepend mark before it, is still a `/` to the kernel: the
    /// checks see it (as characters, `"/\u{301}x"` had no leading `/`, and `a\u{600}/..` no `..`).
    @Test(arguments: ["/\u{301}x", "../\u{301}x", "a\u{600}/../../x", "a\u{600}/../.relocator/lock", ".relocator/\u{301}tmp",
                      "/\u{200D}etc/passwd", "/\u{FE0F}x", "a\u{600}//b", "a/\u{301}/../b"])
    func refusesNamesWhoseSlashIsPartOfACharacter(name: String) {
        #expect(throws: Filename.Invalid.self, "\(name.unicodeScalars.map { String($0.value, radix: 16) })") { try Filename(name) }
    }

    /// Two spellings of one character are two names to the kernel: `Filename` and `FilenameKey`
    /// compare bytes, not characters (which Swift's `String` compares by canonical equivalence).
    @Test func twoSpellingsOfOneCharacterAreTwoFilenames() throws {
        let composed = "caf\u{E9}.bin", decomposed = "cafe\u{301}.bin"
        #expect(composed == decomposed)
        #expect(try Filename(composed) != Filename(decomposed))
        #expect(try Filename(composed) == Filename("caf\u{E9}.bin"))
        #expect(FilenameKey(composed) != FilenameKey(decomposed))
        #expect(Set([FilenameKey(composed), FilenameKey(decomposed), FilenameKey(composed)]).count == 2)
        #expect(FilenameKey(decomposed).description.utf8.elementsEqual(decomposed.utf8))
    }

    /// Components are split at every `/` byte, whatever character it belongs to.
    @Test func componentsAreSplitAtEverySlashByte() throws {
        #expect(Filename.components(of: "a\u{600}/b\u{301}/c").map(String.init) == ["a\u{600}", "b\u{301}", "c"])
        #expect(Filename.components(of: "x/\u{301}y").map(String.init) == ["x", "\u{301}y"])
        #expect(try Filename("a\u{600}/b").baseName == "b")
        #expect(LegacyPartName.fileName(of: "d\u{600}/7-1.part") == "7-1.part")
        for name in ["a\u{600}/b", "x/\u{301}y"] {
            #expect(Filename.components(of: try Filename(name).value).allSatisfy { !$0.utf8.contains(UInt8(ascii: "/")) })
        }
    }
}
