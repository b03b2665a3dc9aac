import Foundation
import HummingbirdTesting
import NIOCore
import HTTPTypes

/// Requests and answers of Hummingbird's router testing, as the route tests write them (over memory
/// and over real servers alike).
extension TestClientProtocol {
    public func postForm(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        fields[.contentType] = "application/x-www-form-urlencoded"
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(string: body))
    }

    public func postJSON(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        fields[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(string: body))
    }

    public func get(_ uri: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .get)
    }
}

extension TestResponse {
    public var text: String { String(buffer: body) }

    public var json: [String: Any]? {
        do {
            return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        } catch {
            return nil
        }
    }
}
