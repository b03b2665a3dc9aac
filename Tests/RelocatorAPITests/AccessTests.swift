import Foundation
import Hummingbird
import HummingbirdTesting
import RelocatorCore
import RelocatorMetrics
import Testing
@testable import RelocatorAPI

/// Who may do what: separate credentials for submitting, administering and (optionally) reading,
/// through the router (over the memory queue and store: what is proved is the HTTP layer's).
@Suite struct AccessTests {
    static let submit = "sub-7f3a", admin = "adm-91c2", read = "rd-44e0"

    func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func withoutASubmitCredentialTheOriginalRoutesNeedNoneAndAdministeringNeedsTheAdministrators() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        api.configuration.withLock { $0.credentials = APICredentials(admin: Self.admin) }
        try await api.test { client in
            // The original clients send no credential and keep working.
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000").status == .ok)
            #expect(try await client.postForm("/update_sentence", "cid=1").status == .ok)
            #expect(try await client.postJSON("/v1/contents/1/count", #"{"count": 6000}"#).status == .accepted)
            #expect(try await client.get("/v1/queues").status == .ok)
            // Pausing, resuming, replaying and purging are the administrator's.
            for path in ["/v1/levels/gold/pause", "/v1/levels/gold/resume"] {
                let refused = try await client.execute(uri: path, method: .post)
                #expect(refused.status == .unauthorized && refused.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true, "\(path)")
                #expect(try await client.execute(uri: path, method: .post, headers: bearer(Self.admin)).status == .ok, "\(path)")
            }
            for path in ["/v1/dead/replay", "/v1/dead/purge"] {
                #expect(try await client.postJSON(path, #"{"all": true}"#).status == .unauthorized, "\(path)")
                #expect(try await client.postJSON(path, #"{"all": true}"#, headers: bearer("adm-91c")).status == .unauthorized, "\(path)")
                #expect(try await client.postJSON(path, #"{"all": true}"#, headers: bearer(Self.admin)).status == .ok, "\(path)")
            }
            let access = try await client.execute(uri: "/v1/access", method: .get, headers: bearer(Self.admin)).json
            #expect(access?["admin"] as? Bool == true && access?["submit"] as? Bool == true)
            #expect(try await client.get("/v1/access").json?["admin"] as? Bool == false)
        }
    }

    @Test func eachCredentialOpensItsOwnScopeAndTheAdministratorsOpensAll() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a.mp4", "bronze")])
        api.configuration.withLock { $0.credentials = APICredentials(submit: Self.submit, admin: Self.admin, read: Self.read) }
        // A registry of its own: the process's is read by MetricsTests, which runs meanwhile.
        try await api.test(metrics: PrometheusMetrics()) { client in
            // Submitting: the submit credential or the administrator's.
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000").status == .unauthorized)
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000", headers: bearer(Self.read)).status == .forbidden)
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000", headers: bearer(Self.submit)).status == .ok)
            #expect(try await client.postForm("/post_sentence", "cid=1&count=6000", headers: bearer(Self.admin)).status == .ok)
            // Administering: the administrator's only; a submitter is forbidden, and told which it needs.
            let forbidden = try await client.execute(uri: "/v1/levels/gold/pause", method: .post, headers: bearer(Self.submit))
            #expect(forbidden.status == .forbidden && forbidden.json?["error"] as? String == "forbidden", "\(forbidden.text)")
            #expect((forbidden.json?["message"] as? String)?.contains("RELOCATOR_ADMIN_TOKEN") == true)
            #expect(try await client.execute(uri: "/v1/levels/gold/pause", method: .post, headers: bearer(Self.read)).status == .forbidden)
            #expect(try await client.execute(uri: "/v1/levels/gold/pause", method: .post, headers: bearer(Self.admin)).status == .ok)
            // Reading: the read credential or the administrator's; health stays open.
            for path in ["/v1/queues", "/v1/dead", "/v1/jobs/1", "/v1/contents/1", "/v1/levels", "/metrics"] {
                #expect(try await client.get(path).status == .unauthorized, "\(path)")
                #expect(try await client.execute(uri: path, method: .get, headers: bearer(Self.submit)).status == .forbidden, "\(path)")
                let allowed = try await client.execute(uri: path, method: .get, headers: bearer(Self.read)).status
                #expect(allowed != .unauthorized && allowed != .forbidden, "\(path): \(allowed)")
                #expect(try await client.execute(uri: path, method: .get, headers: bearer(Self.admin)).status == allowed, "\(path)")
            }
            #expect(try await client.get("/healthz").status == .ok)
            #expect(try await client.get("/readyz").status == .ok)
            // A browser asks for the read credential as a password and sends it as Basic.
            let page = try await client.get("/ui")
            #expect(page.status == .unauthorized && page.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            let basic = "Basic " + Data("operator:\(Self.read)".utf8).base64EncodedString()
            let shown = try await client.execute(uri: "/ui", method: .get, headers: [.authorization: basic])
            #expect(shown.status == .ok && shown.text.contains(#"data-admin-required="true""#))
            // Unknown routes and wrong methods still answer 404 and 405, whoever asks.
            #expect(try await client.get("/no/such/route").status == .notFound)
            #expect(try await client.get("/post_sentence").status == .methodNotAllowed)
        }
    }

    /// The dashboard is read-only until a tab gives it the administrator credential: its buttons
    /// are hidden by the stylesheet until the script, having checked the credential with
    /// `/v1/access`, marks the page as administered.
    @Test func theDashboardIsReadOnlyUntilATabGivesItTheAdministratorsCredential() async throws {
        let api = MemoryAPI()
        api.configuration.withLock { $0.credentials = APICredentials(admin: Self.admin) }
        try await api.test { client in
            let page = try await client.get("/ui")
            #expect(page.status == .ok)
            #expect(page.text.contains(#"<body data-admin-required="true">"#) && page.text.contains(#"id="unlock""#))
            let css = try await client.get("/ui/dashboard.css").text
            #expect(css.contains(#"body[data-admin-required="true"]:not(.admin) button[data-action] { display: none; }"#))
            let script = try await client.get("/ui/dashboard.js").text
            #expect(script.contains(#"fetch("/v1/access""#) && script.contains("sessionStorage"))
        }
        // Without an administrator credential the buttons show, as before.
        api.configuration.withLock { $0.credentials = APICredentials() }
        try await api.test { client in
            let page = try await client.get("/ui")
            #expect(page.text.contains(#"<body data-admin-required="false">"#) && !page.text.contains(#"id="unlock""#))
        }
    }
}
