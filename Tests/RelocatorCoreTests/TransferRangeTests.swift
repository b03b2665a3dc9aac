import RelocatorCore
import Testing

/// The transfer protocol's ranges and refusals, pure: no value of a header traps.
@Suite struct TransferRangeTests {
    @Test func aClosedRangeIsItsOffsetAndLength() throws {
        let range = try #require(try TransferProtocol.range("bytes=10-19", size: 100))
        #expect(range.offset == 10 && range.length == 10)
    }

    @Test func anOpenRangeRunsToTheEndAndALastPastTheEndIsCut() throws {
        let open = try #require(try TransferProtocol.range("bytes=90-", size: 100))
        #expect(open.offset == 90 && open.length == 10)
        let past = try #require(try TransferProtocol.range("bytes=95-1000", size: 100))
        #expect(past.offset == 95 && past.length == 5)
    }

    @Test func aRangeStartingPastTheEndIsNotSatisfiable() throws {
        #expect(try TransferProtocol.range("bytes=100-", size: 100) == nil)
        #expect(try TransferProtocol.range("bytes=0-", size: 0) == nil)
    }

    @Test func malformedRangesAreRefusedNamingWhatCame() {
        for header in ["items=0-1", "bytes=", "bytes=-5", "bytes=a-b", "bytes=5-4", "bytes=0-1,3-4", "bytes=+1-2",
                       "bytes=99999999999999999999-", "bytes=٣-٤"] {
            #expect(throws: TransferProtocol.RangeInvalid.self, "\(header)") { try TransferProtocol.range(header, size: 1 << 40) }
        }
        #expect { try TransferProtocol.range("items=0-1", size: 10) } throws: { "\($0)".contains("'items=0-1'") }
    }

    @Test func aRangeLongerThanTheMaximumIsRefusedSayingHowLong() {
        let size = Int64(TransferProtocol.maximumRange) * 2
        #expect { try TransferProtocol.range("bytes=0-", size: size) } throws: {
            "\($0)" == "at most \(TransferProtocol.maximumRange) bytes per request (asked for \(size))"
        }
        #expect(throws: Never.self) { try TransferProtocol.range("bytes=0-\(TransferProtocol.maximumRange - 1)", size: size) }
    }

    @Test func everyRefusalHasTheStatusItsKindCallsFor() {
        #expect(TransferProtocol.Refusal.invalidRange.status == 400)
        #expect(TransferProtocol.Refusal.missingCredential.status == 401)
        #expect(TransferProtocol.Refusal.wrongCredential.status == 403)
        #expect(TransferProtocol.Refusal.notServed.status == 404)
        #expect(TransferProtocol.Refusal.staleDelivery.status == 409)
        #expect(TransferProtocol.Refusal.versionChanged.status == 412)
        #expect(TransferProtocol.Refusal.rangeNotSatisfiable.status == 416)
        #expect(TransferProtocol.Refusal.unsafePath.status == 422)
        #expect(TransferProtocol.Refusal.internalError.status == 500 && TransferProtocol.Refusal.unavailable.status == 503)
        #expect(Set(TransferProtocol.Refusal.allCases.map(\.rawValue)).count == TransferProtocol.Refusal.allCases.count)
    }

    @Test func thePathsNameTheContent() {
        #expect(TransferProtocol.contentPath(7) == "/transfer/v1/contents/7")
        #expect(TransferProtocol.removePath(7) == "/transfer/v1/contents/7/remove")
    }
}
