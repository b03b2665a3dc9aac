import FileMover
import Foundation
import Hummingbird
import HummingbirdTesting
import RelocatorCore
import RelocatorTesting
import RelocatorTransfer
import Testing
import TestSupport

/// A reconcile run's questions to a worker of another host (`HostInquiry`): answered only to the
/// run that recorded them, about the filename recorded in the queue, resolved beneath the levels.
@Suite struct InquiryEndpointTests {
    /// A token, a secret, and what the run recorded for each content it asks about.
    struct Inquiry {
        let token = String(TransferSecret.random().text.prefix(32))
        let secret = TransferSecret.random()

        /// (An hour by default: the memory queue's clock is the wall clock, and a loaded machine may
        /// take minutes between the record and the request.)
        func ask(_ f: TransferFixture, cid: Int64, _ filename: String, ttl: Duration = .seconds(3600)) throws {
            _ = try f.queue.control(.inquire(token: token, key: secret.digest, cid: cid, filename: filename, ttl: ttl))
        }

        func headers(token: String? = nil, secret: String? = nil) -> HTTPFields {
            var fields: HTTPFields = [:]
            fields[TransferHeader.inquiry] = token ?? self.token
            fields[TransferHeader.secret] = secret ?? self.secret.text
            return fields
        }
    }

    /// "<status> <refusal>" of an inquiry about `cid`.
    func refusal(_ client: any TestClientProtocol, _ cid: String, _ headers: HTTPFields) async throws -> String {
        let response = try await client.execute(uri: "/\(TransferProtocol.pathPrefix)/\(cid)/inquiry", method: .get, headers: headers)
        return "\(response.status.code) \(response.refusal ?? "-")"
    }

    func answer(_ response: TestResponse) throws -> HostInquiry.Answer {
        try JSONDecoder().decode(HostInquiry.Answer.self, from: response.bytes)
    }

    @Test func anInquiryAnswersWhichLevelsInServiceHoldTheFileItRecorded() async throws {
        let f = try TransferFixture(alsoHolding: ["bronze"])
        defer { f.remove() }
        try f.file("movies/a.mp4", bytes: 12345)
        try FileManager.default.createDirectory(atPath: f.gold + "/movies/dir", withIntermediateDirectories: true)
        let inquiry = Inquiry()
        try inquiry.ask(f, cid: 7, "movies/a.mp4")
        try inquiry.ask(f, cid: 8, "movies/not-there.mp4")
        try inquiry.ask(f, cid: 9, "movies/dir")
        try await f.test { client in
            let found = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
            #expect(found.status == .ok, "\(found.message)")
            #expect(try answer(found) == HostInquiry.Answer(cid: 7, levels: ["bronze", "gold"], found: [.init(level: "gold", size: 12345)]))
            // Not there, and a directory, are held by no level.
            for cid: Int64 in [8, 9] {
                let none = try await client.execute(uri: TransferProtocol.inquiryPath(cid), method: .get, headers: inquiry.headers())
                #expect(try answer(none) == HostInquiry.Answer(cid: cid, levels: ["bronze", "gold"], found: []))
            }
        }
        // A level out of service is not named as looked in: "not here" would be a guess.
        f.levels.roots["gold"]!.withdraw(because: "unmounted")
        try await f.test { client in
            let withdrawn = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
            #expect(try answer(withdrawn) == HostInquiry.Answer(cid: 7, levels: ["bronze"], found: []))
        }
    }

    /// A level whose disk does not answer (a FUSE passthrough whose daemon is stopped) is not
    /// looked in: the inquiry is answered for the others within the looks' patience, and a later
    /// one at once, while the look at that disk is still under way.
    @Test func anInquiryIsAnsweredWhileALevelsDiskDoesNotAnswer() async throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let f = try TransferFixture(throughFuse: ["bronze"])
        defer { f.remove() }
        try f.file("movies/a.mp4", bytes: 12345)
        let inquiry = Inquiry()
        try inquiry.ask(f, cid: 7, "movies/a.mp4")
        let bronze = try #require(f.fuses["bronze"])
        bronze.hang()
        // An inquiry that waited for the disk would wait for good: after ten minutes bronze answers,
        // and the answer then names it as looked in, which fails the test instead of hanging it.
        // (Long enough for a loaded machine: a minute was not, once, before the second request.)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(600))
            bronze.answer()
        }
        defer { watchdog.cancel() }
        // (A patience a loaded machine's look at gold keeps within; bronze's never returns.)
        try await f.test(lookPatience: .seconds(15)) { client in
            for _ in 0..<2 {
                let answered = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
                #expect(answered.status == .ok, "\(answered.message)")
                #expect(try answer(answered) == HostInquiry.Answer(cid: 7, levels: ["gold"], found: [.init(level: "gold", size: 12345)]))
            }
        }
        bronze.answer()
        try await f.test { client in
            let answered = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
            #expect(try answer(answered) == HostInquiry.Answer(cid: 7, levels: ["bronze", "gold"], found: [.init(level: "gold", size: 12345)]))
        }
    }

    @Test func anInquiryIsAnsweredOnlyToTheRunThatRecordedItAndWhileItLasts() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("a.bin", bytes: 10)
        let inquiry = Inquiry(), other = Inquiry()
        try inquiry.ask(f, cid: 7, "a.bin", ttl: .seconds(3600))
        try other.ask(f, cid: 8, "a.bin")
        try await f.test { [self] client in
            var noToken = inquiry.headers()
            noToken[TransferHeader.inquiry] = nil
            let r1 = try await refusal(client, "7", noToken)
            #expect(r1 == "401 missing_credential")
            var noSecret = inquiry.headers()
            noSecret[TransferHeader.secret] = nil
            let r2 = try await refusal(client, "7", noSecret)
            #expect(r2 == "401 missing_credential")
            let r3 = try await refusal(client, "7", inquiry.headers(secret: TransferSecret.random().text))
            #expect(r3 == "403 wrong_credential")
            // Another run's secret, another run's content, a token that is no token.
            let r4 = try await refusal(client, "7", inquiry.headers(secret: other.secret.text))
            #expect(r4 == "403 wrong_credential")
            let r5 = try await refusal(client, "8", inquiry.headers())
            #expect(r5 == "403 wrong_credential")
            let r6 = try await refusal(client, "7", inquiry.headers(token: "../../x"))
            #expect(r6 == "403 wrong_credential")
            let r7 = try await refusal(client, "7", inquiry.headers(token: String(repeating: "a", count: 65)))
            #expect(r7 == "403 wrong_credential")
            let r8 = try await refusal(client, "x7", inquiry.headers())
            #expect(r8 == "400 invalid_cid")
            let r9 = try await refusal(client, "99999999999999999999", inquiry.headers())
            #expect(r9 == "400 invalid_cid")
            let r10 = try await refusal(client, "7", inquiry.headers())
            #expect(r10 == "200 -")
        }
        // The run's record expires (Redis' clock; the memory queue's here): its questions with it.
        f.queue.advance(.seconds(3601))
        try await f.test { client in
            let expired = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
            #expect(expired.status == .forbidden && expired.refusal == "wrong_credential")
        }
    }

    @Test func anInquiryWithASharedKeyMustBeSigned() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        let key = try TransferSigningKey(bytes: Array("a key every host shares".utf8))
        f.signingKey = key
        let inquiry = Inquiry()
        try inquiry.ask(f, cid: 7, "a.bin")
        try await f.test { client in
            let unsigned = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: inquiry.headers())
            #expect(unsigned.status == .unauthorized && unsigned.refusal == "missing_credential")
            var signed = inquiry.headers()
            signed[TransferHeader.signature] = key.sign(method: "GET", path: TransferProtocol.inquiryPath(7), cid: "7", gen: "", range: "")
            let answered = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: signed)
            #expect(answered.status == .ok, "\(answered.message)")
            // A signature of another content's question is not this one's.
            signed[TransferHeader.signature] = key.sign(method: "GET", path: TransferProtocol.inquiryPath(8), cid: "8", gen: "", range: "")
            let wrong = try await client.execute(uri: TransferProtocol.inquiryPath(7), method: .get, headers: signed)
            #expect(wrong.status == .forbidden && wrong.refusal == "wrong_signature")
        }
    }

    @Test func theNameAskedAfterIsResolvedBeneathTheLevelsAndNeverEscapesThem() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try FileManager.default.createSymbolicLink(atPath: f.gold + "/link", withDestinationPath: f.outside)
        try FileManager.default.createSymbolicLink(atPath: f.gold + "/secret", withDestinationPath: f.outside + "/secret")
        let inquiry = Inquiry()
        let escapes: [(Int64, String, String)] = [
            (1, "../outside/secret", "invalid_filename"), (2, "/etc/passwd", "invalid_filename"), (3, "link/secret", "unsafe_path"),
            (4, "secret", "unsafe_path"), (5, ".relocator/lock", "invalid_filename"), (6, "a/../../outside/secret", "invalid_filename"),
        ]
        for (cid, name, _) in escapes { try inquiry.ask(f, cid: cid, name) }
        try await f.test { client in
            for (cid, name, code) in escapes {
                let response = try await client.execute(uri: TransferProtocol.inquiryPath(cid), method: .get, headers: inquiry.headers())
                #expect(response.refusal == code, "\(name): \(response.status) \(response.message)")
                #expect(!String(decoding: response.bytes, as: UTF8.self).contains("secret outside the level"))
            }
            // The request cannot name a file of its own: a query is not read.
            let queried = try await client.execute(uri: TransferProtocol.inquiryPath(7) + "?filename=..%2Foutside%2Fsecret", method: .get,
                                                   headers: inquiry.headers())
            #expect(queried.status == .forbidden && queried.refusal == "wrong_credential")
        }
    }
}
