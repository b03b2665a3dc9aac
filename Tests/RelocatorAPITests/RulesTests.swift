import Foundation
import Hummingbird
import JobQueue
import RedisClient
import RelocatorApp
import RelocatorCore
import SQLStore
import Testing
@testable import RelocatorAPI

/// The pure rules of the HTTP layer: form fields, error mapping, the 405 table, times, readiness
/// words, the move rate.
@Suite struct RulesTests {
    func message(_ body: () throws -> Any) -> String? {
        do {
            _ = try body()
            return nil
        } catch let error as APIError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func aCountBeyondTwoToTheFiftyThirdMinusOneSaysTheBound() throws {
        for text in ["9223372036854775808", "9223372036854775807", "9007199254740992", "99999999999999999999999"] {
            let tooLarge = message { try FormRules.count(text) }
            #expect(tooLarge?.hasPrefix("count must be a whole number between 0 and 9007199254740991 (2^53 − 1") == true, "\(text): \(tooLarge ?? "accepted")")
        }
        let letters = message { try FormRules.count("12abc") }
        #expect(letters?.contains("'count' was '12abc'") == true)
        let negative = message { try FormRules.count("-5") }
        #expect(negative == "form field 'count' must be at least 0, got -5")
        let missing = message { try FormRules.count(nil) }
        #expect(missing == "form field 'count' is missing")
        let zero = message { try FormRules.cid("0") }
        #expect(zero == "form field 'cid' must be at least 1, got 0")
        #expect(try FormRules.count(" 42 ") == 42)
        #expect(try FormRules.count("9007199254740991") == 9_007_199_254_740_991)
    }

    @Test func onlyURLEncodedFormsAreForms() {
        #expect(FormRules.isURLEncoded("application/x-www-form-urlencoded; charset=utf-8"))
        #expect(!FormRules.isURLEncoded("multipart/form-data; boundary=x"))
        #expect(!FormRules.isURLEncoded("application/json"))
        #expect(FormRules.isURLEncoded("Application/X-WWW-Form-URLEncoded"))
        #expect(!FormRules.isURLEncoded("application/x-www-form-urlencode"))
        #expect(!FormRules.isURLEncoded(""))
        #expect(!FormRules.isURLEncoded("application_x-www-form-urlencoded"))
    }

    @Test func serverTroubleIsA503ThatSaysWhatToDoWithoutInternals() throws {
        let missing = try #require(APIError.from(SQLError(code: .databaseFileMissing, location: "sqlite /secret/path.sqlite", message: "x")))
        #expect(missing.status == .serviceUnavailable && missing.message.contains("relocator migrate") && !missing.message.contains("/secret"))
        #expect(APIError.from(SQLError(code: .schemaMissing, message: "no table"))?.message.contains("relocator migrate") == true)
        #expect(APIError.from(SQLError(code: .permissionDenied, message: "EACCES"))?.status == .serviceUnavailable)
        #expect(APIError.from(SQLError(code: .connectionRefused, message: "x"))?.message == "the database is unreachable; try again later")
        #expect(APIError.from(RedisError(code: .connection, address: "127.0.0.1:1", command: "PING", message: "refused"))?.status == .serviceUnavailable)
        #expect(APIError.from(SQLError(code: .badSQL, message: "syntax")) == nil)
    }

    @Test func aRedisThatIsLoadingOrFailingOverIsA503AndItsErrorReplyIsNotAMalformedOne() throws {
        // Right after a restart Redis answers every command with LOADING until its data is read.
        let queue = JobQueue(keys: try KeySchema(prefix: "{rules}", shards: 1))
        do {
            _ = try queue.submission(from: .error("LOADING Redis is loading the dataset in memory"), address: "127.0.0.1:1")
            Issue.record("an error reply was read as a submission")
        } catch let error as RedisError {
            #expect(error.code == .server && error.isTransientServerState, "\(error)")
            let answer = try #require(APIError.from(error))
            #expect(answer.status == .serviceUnavailable && answer.message.contains("try again later"), "\(answer.message)")
        }
        for word in ["BUSY Redis is busy running a script", "MASTERDOWN Link with MASTER is down", "READONLY You can't write against a read only replica.",
                     "TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down"] {
            #expect(APIError.from(RedisError(code: .server, address: "a", message: word))?.status == .serviceUnavailable, "\(word)")
        }
        // Anything else from the server stays an internal error (a bug to look at, not to retry).
        #expect(APIError.from(RedisError(code: .server, address: "a", message: "ERR unknown command 'X'")) == nil)
        #expect(APIError.from(RedisError(code: .server, address: "a", message: "LOADINGX")) == nil)
    }

    @Test func aKnownPathWithAnotherMethodIsA405ThatSaysWhichMethodsAreAllowed() {
        var table = RouteTable()
        table.add("post_sentence", .post, scope: .submit)
        table.add("v1/contents/:cid", .get, scope: .read)
        table.add("v1/contents/:cid/count", .post, scope: .submit)
        let wrong = ErrorMiddleware.mapped(.notFound, .get, "/post_sentence", maxBody: 65536, routes: table)
        #expect(wrong.status == .methodNotAllowed && wrong.headers[.allow] == "POST")
        #expect(ErrorMiddleware.mapped(.notFound, .delete, "/v1/contents/7", maxBody: 65536, routes: table).headers[.allow] == "GET")
        #expect(ErrorMiddleware.mapped(.notFound, .get, "/v1/contents/7/nothing", maxBody: 65536, routes: table).code == .notFound)
        #expect(ErrorMiddleware.mapped(.contentTooLarge, .post, "/post_sentence", maxBody: 65536, routes: table).message
            == "the request body is larger than 65536 bytes")
    }

    @Test func aCredentialIsComparedWholeAsABearerOrABasicPassword() {
        let credentials = APICredentials(submit: "sub", admin: "s3cret", read: "look")
        func basic(_ user: String, _ password: String) -> String { "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
        #expect(credentials.scopes(of: "Bearer s3cret") == [.health, .read, .submit, .admin])
        #expect(credentials.scopes(of: basic("anyone", "s3cret")) == [.health, .read, .submit, .admin])
        for wrong in ["Bearer s3cre", "Bearer s3cretX", "Bearer ", "s3cret", "Basic s3cret", basic("s3cret", ""), "Bearer S3CRET"] {
            #expect(credentials.scopes(of: wrong) == [.health], "\(wrong)")
        }
        #expect(credentials.scopes(of: nil) == [.health])
        #expect(credentials.scopes(of: "Bearer sub") == [.health, .submit])
        #expect(credentials.scopes(of: "Bearer look") == [.health, .read])
        // A scope without a credential is open; the older single token stands for submit and admin.
        #expect(APICredentials(admin: "a").scopes(of: nil) == [.health, .read, .submit])
        let legacy = APICredentials(legacy: "old")
        #expect(legacy.submit == "old" && legacy.admin == "old" && legacy.read == nil)
        #expect(APICredentials(admin: "", legacy: "").isOpen)
        #expect(APIError.unauthorized.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
        #expect(APIError.unauthorizedBrowser.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
    }

    @Test func timesAreRFC3339UTCWithMilliseconds() throws {
        #expect(Timestamp(milliseconds: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 1_795_815_235_123).description == "2026-11-27T21:33:55.123Z")
        let never: Int64? = nil, zero: Int64? = 0
        #expect(Timestamp(milliseconds: never) == nil && Timestamp(milliseconds: zero) == nil)
        let encoded = try RelocatorJSON.string(["at": Timestamp(milliseconds: 1_795_815_235_123)])
        #expect(encoded == #"{"at":"2026-11-27T21:33:55.123Z"}"#)
    }

    /// `MigrationStatus` as the SQL layer encodes it.
    func status(applied: [String], pending: [String], latest: String, present: Bool = true) throws -> MigrationStatus {
        let json = try RelocatorJSON.data(StatusJSON(applied: applied, pending: pending, unknown: [], latest_known: latest,
                                                     latest_known_version: Int(latest.prefix(4)) ?? 0, schema_present: present))
        return try JSONDecoder().decode(MigrationStatus.self, from: json)
    }

    struct StatusJSON: Encodable {
        var applied: [String], pending: [String], unknown: [String], latest_known: String, latest_known_version: Int, schema_present: Bool
    }

    @Test func readinessSaysWhichSchemaTheDatabaseHasAndWhichThisBinaryNeeds() throws {
        let behind = try status(applied: ["0001_original_tables", "0002_relocations"], pending: ["0003_a", "0004_b", "0005_level_policy"],
                                latest: "0005_level_policy")
        #expect(SQLContentStore.schemaProblem(behind) == "schema at 0002, this binary needs 0005: run relocator migrate")
        let none = try status(applied: [], pending: ["0001_a"], latest: "0001_a", present: false)
        #expect(SQLContentStore.schemaProblem(none) == "no schema: run relocator migrate")
        #expect(SQLContentStore.schemaProblem(try status(applied: ["0001_a"], pending: [], latest: "0001_a")) == nil)
        let readiness = Readiness(redisProblem: nil, databaseProblem: "schema at 0002, this binary needs 0005: run relocator migrate")
        #expect(!readiness.isReady && readiness.summary.contains("database: schema at 0002"))
    }
}
