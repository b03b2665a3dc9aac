import RelocatorCore
import Testing

/// Arithmetic that never traps on a value from outside, and the bounds of a count.
@Suite struct BoundsTests {
    @Test func aSumPastEitherEndStopsThere() {
        #expect(Int64.max.saturatingAdd(1) == .max)
        #expect(Int64.min.saturatingAdd(-1) == .min)
        #expect(Int64(40).saturatingAdd(2) == 42)
    }

    @Test func aDifferencePastEitherEndStopsThere() {
        #expect(Int64.min.saturatingSubtract(1) == .min)
        #expect(Int64.max.saturatingSubtract(-1) == .max)
        #expect(Int64(0).saturatingSubtract(Int64.min) == .max)
        #expect(Int64(44).saturatingSubtract(2) == 42)
    }

    @Test func aProductPastEitherEndStopsThereWithItsSign() {
        #expect(Int64.max.saturatingMultiply(2) == .max)
        #expect(Int64.min.saturatingMultiply(2) == .min)
        #expect(Int64.min.saturatingMultiply(-1) == .max)
        #expect(Int64(-3).saturatingMultiply(Int64.max) == .min)
        #expect(Int64(6).saturatingMultiply(7) == 42)
    }

    @Test func aDoubleIsRoundedDownAndClampedAtTheBoundsOfInt64() {
        #expect(Int64(clamping: 2.9) == 2)
        #expect(Int64(clamping: -2.1) == -3)
        #expect(Int64(clamping: 1e300) == .max)
        #expect(Int64(clamping: -1e300) == .min)
        #expect(Int64(clamping: .infinity) == .max)
        #expect(Int64(clamping: -.infinity) == .min)
        // 2^63 is one above Int64.max: compared as a Double, never converted.
        #expect(Int64(clamping: 9_223_372_036_854_775_808.0) == .max)
    }

    @Test func notANumberIsTheLowerBound() {
        #expect(Int64(clamping: .nan) == .min)
        #expect(Int64(clamping: .nan, to: 5...9) == 5)
        #expect(CountBound.clamped(.nan) == 0)
    }

    @Test func aCountIsClampedToWhatEveryJSONClientHoldsExactly() {
        #expect(CountBound.clamped(-5) == 0)
        #expect(CountBound.clamped(1e20) == CountBound.max)
        #expect(CountBound.clamped(12.75) == 12)
        #expect(CountBound.max == (1 << 53) - 1)
        #expect(CountBound.range.contains(CountBound.max) && !CountBound.range.contains(CountBound.max + 1))
    }

    @Test func theRangeMessageNamesTheFieldTheBoundsAndWhatCame() {
        #expect(CountBound.rangeMessage("n", minimum: 0, maximum: 10, got: "x") == "n must be a whole number between 0 and 10 (form field 'n' was 'x')")
        #expect(CountBound.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: nil)
                == "count must be a whole number between 0 and \(CountBound.text)")
        #expect(CountBound.rangeMessage("cid", minimum: 1, got: "0", source: "path segment").hasSuffix("(path segment 'cid' was '0')"))
    }

    @Test func aLongValueIsShownCutAfter64Characters() {
        let message = CountBound.rangeMessage("n", minimum: 0, maximum: 1, got: String(repeating: "9", count: 100))
        #expect(message.contains("'\(String(repeating: "9", count: 64))…'"))
        #expect(!message.contains(String(repeating: "9", count: 65)))
    }
}

/// Pieces of a collection, in order, each at most the size asked for.
@Suite struct ChunksTests {
    @Test func piecesKeepTheOrderAndTheLastHoldsTheRest() {
        let pieces = Array(1...7).chunks(of: 3).map(Array.init)
        #expect(pieces == [[1, 2, 3], [4, 5, 6], [7]])
    }

    @Test func anExactMultipleHasNoEmptyPieceAndNothingHasNone() {
        #expect(Array(1...6).chunks(of: 3).count == 2)
        #expect([Int]().chunks(of: 3).isEmpty)
        #expect(Array(1...2).chunks(of: 1000).map(Array.init) == [[1, 2]])
    }
}

/// Numbers as people read them.
@Suite struct FormattingTests {
    @Test func decimalsAreRoundedAndPaddedToTheNumberAsked() {
        #expect(85.0.formatted(decimals: 1) == "85.0")
        #expect(2.25.formatted(decimals: 1) == "2.3")
        #expect(0.5.formatted(decimals: 3) == "0.500")
        #expect(99.96.formatted(decimals: 1) == "100.0")
    }

    @Test func noDecimalsShowsTheRoundedWholeNumber() {
        #expect(42.4.formatted(decimals: 0) == "42")
        #expect(41.6.formatted(decimals: 0) == "42")
    }

    @Test func aCountIsShownAsAWholeNumberRoundedDown() {
        #expect(1234.9.countText == "1234")
        #expect(0.0.countText == "0")
        #expect((-2.5).countText == "-3")
    }

    @Test func aCountBeyondAWholeNumberIsShownAsItIs() {
        #expect(Double.infinity.countText == "inf")
        #expect(Double.nan.countText == "nan")
        #expect(1e19.countText == "1e+19")
    }
}

/// What a level directory without its reserved directory means.
@Suite struct LevelReadinessTests {
    @Test func aReservedDirectoryMeansReadyWhateverWasSeen() {
        #expect(LevelReadiness.of(hasReservedDirectory: true, seenBefore: true) == .ready)
        #expect(LevelReadiness.of(hasReservedDirectory: true, seenBefore: false) == .ready)
    }

    @Test func aLevelNeverSeenIsToInitialiseOneSeenBeforeIsUnavailable() {
        #expect(LevelReadiness.of(hasReservedDirectory: false, seenBefore: false) == .initialise)
        #expect(LevelReadiness.of(hasReservedDirectory: false, seenBefore: true) == .unavailable)
    }

    @Test func theReasonSaysWhatToDo() {
        let reason = LevelReadiness.reason(level: "gold", directory: "/data/ssd")
        #expect(reason.hasPrefix("/data/ssd has no .relocator/ although level 'gold' was in use before"))
        #expect(reason.hasSuffix("run `relocator levels init gold` to start it afresh"))
    }
}
