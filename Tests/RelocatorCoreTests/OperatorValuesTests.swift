import RelocatorCore
import Testing

@Suite struct WholeNumberTests {
    @Test func aNumberInsideTheRangeIsRead() throws {
        #expect(try OperatorValues.wholeNumber("8080", in: 0...65535) == 8080)
        #expect(try OperatorValues.wholeNumber(" 0 ", in: 0...65535) == 0)
        #expect(try OperatorValues.wholeNumber("+7", in: 1...10) == 7)
        #expect(try OperatorValues.wholeNumber("-3", in: -5...5) == -3)
    }

    @Test func aPortAboveTheRangeIsRefusedWithTheRangeInsteadOfWrapping() {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.wholeNumber("99999", in: 0...65535) }
        #expect(error?.reason == "99999 is too large; expected a whole number from 0 to 65535")
    }

    @Test func aNegativeNumberIsReadAndRefusedWithTheRange() {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.wholeNumber("-5", in: 1...1000) }
        #expect(error?.reason == "-5 is too small; expected a whole number from 1 to 1000")
    }

    @Test func aNumberBeyondSixtyFourBitsIsTooLargeWithTheRange() {
        let error = #expect(throws: OperatorValues.Invalid.self) {
            try OperatorValues.wholeNumber("99999999999999999999999", in: 0...Int64.max)
        }
        #expect(error?.reason == "99999999999999999999999 is too large; expected a whole number ≥ 0 (at most 9223372036854775807)")
        let small = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.wholeNumber("-99999999999999999999999", in: 0...5) }
        #expect(small?.reason.hasPrefix("-99999999999999999999999 is too small") == true)
    }

    @Test(arguments: ["", "12a", "1.5", "0x10", "--", "one"])
    func textThatIsNotANumberSaysSo(text: String) {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.wholeNumber(text, in: 0...10) }
        #expect(error?.reason.contains("expected a whole number from 0 to 10") == true)
    }
}

@Suite struct DurationTextTests {
    @Test func unitsAndSumsAreSeconds() throws {
        #expect(try OperatorValues.durationSeconds("90s") == 90)
        #expect(try OperatorValues.durationSeconds("90") == 90)
        #expect(try OperatorValues.durationSeconds("15m") == 900)
        #expect(try OperatorValues.durationSeconds("1h") == 3600)
        #expect(try OperatorValues.durationSeconds("7d") == 604_800)
        #expect(try OperatorValues.durationSeconds("2w") == 1_209_600)
        #expect(try OperatorValues.durationSeconds("1h30m") == 5400)
        #expect(try OperatorValues.durationSeconds("0s") == 0)
    }

    @Test(arguments: ["", "h", "1x", "1.5h", "-1h", "1h30", "s1", "1 h"])
    func malformedDurationsAreRefusedWithAnExample(text: String) {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.durationSeconds(text) }
        #expect(error?.reason.contains("90s") == true)
    }

    @Test func aDurationBeyondTheMaximumIsTooLong() {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.durationSeconds("99999999999999999999d") }
        #expect(error?.reason.contains("too long") == true)
        #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.durationSeconds("2d", maximum: 86400) }
    }

    @Test func formattingUsesTheLargestExactUnits() {
        #expect(OperatorValues.formatDuration(seconds: 0) == "0s")
        #expect(OperatorValues.formatDuration(seconds: 90) == "1m30s")
        #expect(OperatorValues.formatDuration(seconds: 3600) == "1h")
        #expect(OperatorValues.formatDuration(seconds: 604_800) == "1w")
        #expect(OperatorValues.formatDuration(seconds: 93784) == "1d2h3m4s")
    }

    @Test func formattingAndParsingAgree() throws {
        for seconds: Int64 in [1, 59, 61, 3599, 86399, 90061, 1_000_000] {
            #expect(try OperatorValues.durationSeconds(OperatorValues.formatDuration(seconds: seconds)) == seconds)
        }
    }
}

@Suite struct ByteSizeTests {
    @Test func binaryAndDecimalUnitsAreBytes() throws {
        #expect(try OperatorValues.bytes("1048576") == 1_048_576)
        #expect(try OperatorValues.bytes("200MiB") == 200 * 1_048_576)
        #expect(try OperatorValues.bytes("200mib") == 200 * 1_048_576)
        #expect(try OperatorValues.bytes("64k") == 65536)
        #expect(try OperatorValues.bytes("1.5GiB") == 1_610_612_736)
        #expect(try OperatorValues.bytes("500MB") == 500_000_000)
        #expect(try OperatorValues.bytes("2 GB") == 2_000_000_000)
        #expect(try OperatorValues.bytes("512B") == 512)
        #expect(try OperatorValues.bytes("1TiB") == 1 << 40)
    }

    @Test(arguments: ["", "MiB", "12XB", "-1MiB", "1.5B", "1..5MiB", ".5MiB"])
    func malformedSizesAreRefused(text: String) {
        #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.bytes(text) }
    }

    @Test func anUnknownUnitIsNamedWithTheChoices() {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.bytes("12XB") }
        #expect(error?.reason.contains("unknown unit 'xb'") == true)
        #expect(error?.reason.contains("MiB") == true)
    }

    @Test func aSizeBeyondSixtyFourBitsIsTooLarge() {
        let error = #expect(throws: OperatorValues.Invalid.self) { try OperatorValues.bytes("99999999TiB") }
        #expect(error?.reason.contains("too large") == true)
    }

    @Test func formattingUsesBinaryUnits() throws {
        #expect(OperatorValues.formatBytes(512) == "512B")
        #expect(OperatorValues.formatBytes(200 * 1_048_576) == "200MiB")
        #expect(OperatorValues.formatBytes(1_610_612_736) == "1.5GiB")
        #expect(try OperatorValues.bytes(OperatorValues.formatBytes(200 * 1_048_576)) == 200 * 1_048_576)
    }
}

@Suite struct TimeTextTests {
    @Test func millisecondsAreRFC3339InUTC() {
        #expect(TimeText.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(TimeText.rfc3339(milliseconds: 1_796_161_635_123) == "2026-12-01T21:47:15.123Z")
        #expect(TimeText.rfc3339(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(TimeText.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func agesAreShort() {
        #expect(TimeText.age(milliseconds: -20) == "0ms")
        #expect(TimeText.age(milliseconds: 850) == "850ms")
        #expect(TimeText.age(milliseconds: 12_400) == "12.4s")
        #expect(TimeText.age(milliseconds: 303_000) == "5m03s")
        #expect(TimeText.age(milliseconds: 7_800_000) == "2h10m")
        #expect(TimeText.age(milliseconds: 273_600_000) == "3d04h")
    }
}

@Suite struct ProgressTextTests {
    let progress = ProgressText(label: "enqueue", total: 500, unit: "counts")

    @Test func aPlainLineHasDoneTotalRateAndETA() {
        #expect(progress.line(done: 120, elapsed: .seconds(4)) == "enqueue: 120/500 counts (24%), 30/s, ETA 13s")
        #expect(progress.line(done: 500, elapsed: .seconds(10)) == "enqueue: 500/500 counts (100%), 50/s")
        #expect(progress.line(done: 0, elapsed: .zero) == "enqueue: 0/500 counts (0%)")
        #expect(ProgressText(label: "replay", total: nil, unit: "jobs").line(done: 7, elapsed: .seconds(2)) == "replay: 7 jobs, 3.5/s")
    }

    @Test func theBarFillsInProportionAndFitsTheWidth() {
        let bar = progress.bar(done: 250, elapsed: .seconds(5), width: 100)
        #expect(bar == "enqueue [####################--------------------]  250/500 counts (50%)  50/s  ETA 5s")
        #expect(bar.count < 100)
        let narrow = progress.bar(done: 250, elapsed: .seconds(5), width: 40)
        #expect(narrow.count < 40)
        #expect(progress.bar(done: 500, elapsed: .seconds(5), width: 100).contains("[########################################]"))
    }

    @Test func plainLinesComeOncePerIntervalAndAtTheEndOfALargeRun() {
        #expect(!ProgressText.plainLineDue(done: 10, total: 500, sinceLastLine: .seconds(1), interval: .seconds(5)))
        #expect(ProgressText.plainLineDue(done: 10, total: 500, sinceLastLine: .seconds(5), interval: .seconds(5)))
        #expect(ProgressText.plainLineDue(done: 500, total: 500, sinceLastLine: .zero, interval: .seconds(5)))
        #expect(ProgressText.plainLineDue(done: 1500, total: 1500, sinceLastLine: .zero, interval: .seconds(5), largeAbove: 1000))
        #expect(!ProgressText.plainLineDue(done: 20, total: 20, sinceLastLine: .zero, interval: .seconds(5), largeAbove: 1000))
    }

    @Test func aShortSmallRunOffATerminalEndsWithoutALine() {
        #expect(!ProgressText.plainFinalLineDue(done: 20, lastPrinted: nil, total: 20, largeAbove: 1000))
        #expect(ProgressText.plainFinalLineDue(done: 20, lastPrinted: 12, total: 20, largeAbove: 1000))
        #expect(!ProgressText.plainFinalLineDue(done: 20, lastPrinted: 20, total: 20, largeAbove: 1000))
        #expect(ProgressText.plainFinalLineDue(done: 1500, lastPrinted: nil, total: 1500, largeAbove: 1000))
    }

    @Test func theETAIsTheRemainderAtTheRateSoFar() {
        #expect(ProgressText.eta(done: 100, total: 400, elapsed: .seconds(10)) == 30)
        #expect(ProgressText.eta(done: 0, total: 400, elapsed: .seconds(10)) == nil)
        #expect(ProgressText.eta(done: 5, total: nil, elapsed: .seconds(10)) == nil)
    }
}
