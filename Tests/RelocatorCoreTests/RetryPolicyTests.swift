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
}
