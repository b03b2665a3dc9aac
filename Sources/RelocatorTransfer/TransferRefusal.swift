import FileMover
import Foundation
import Hummingbird
import Logging
import RelocatorCore

/// A refusal of the transfer endpoint: its status and code (`TransferProtocol.Refusal`) and a
/// message naming what was wrong, answered as `{"error": code, "message": …}`.
public struct TransferRefusal: HTTPResponseError, CustomStringConvertible, Sendable {
    public let code: TransferProtocol.Refusal
    public let message: String
    public let headers: HTTPFields

    public init(_ code: TransferProtocol.Refusal, _ message: String, headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var status: HTTPResponse.Status { HTTPResponse.Status(code: code.status) }
    public var description: String { "\(code.rawValue): \(message)" }

    /// The JSON body of every refusal.
    public struct Body: Codable, Equatable, Sendable {
        public var error: String
        public var message: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        var buffer = ByteBuffer()
        // Two strings: encoding cannot fail.
        buffer.writeBytes((try? JSONEncoder().encode(Body(error: code.rawValue, message: message))) ?? Data())
        var headers = self.headers
        headers[.contentType] = "application/json"
        headers[TransferHeader.refusal] = code.rawValue
        return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
    }

    /// The refusal of a mover's error (a link on the path, a level no longer in place…); nil for
    /// another error.
    static func moved(_ error: any Error) -> TransferRefusal? {
        guard let error = error as? MoveError else { return nil }
        switch error.kind {
        case .unsafePath: return TransferRefusal(.unsafePath, error.message)
        case .notRegularFile: return TransferRefusal(.notRegularFile, error.message)
        case .invalidFilename: return TransferRefusal(.invalidFilename, error.message)
        case .sourceMissing: return TransferRefusal(.sourceMissing, error.message)
        case .sourceChanged: return TransferRefusal(.sourceChanged, error.message)
        case .checksumMismatch: return TransferRefusal(.checksumMismatch, error.message)
        case .contentLocked: return TransferRefusal(.contentLocked, error.message)
        case .levelUnavailable: return TransferRefusal(.unavailable, error.message)
        default: return TransferRefusal(.internalError, error.description)
        }
    }
}

/// Every error becomes a JSON refusal: the endpoint's own, the mover's (by its kind), Hummingbird's
/// (a path no route takes: 404), anything else a 500 whose details go to the log only.
struct TransferErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let refusal = Self.refusal(for: error, request.uri.path)
            if refusal.code.status >= 500 {
                logger.error("transfer request failed", metadata: ["http.path": "\(request.uri.path.prefix(200))", "error": "\(error)"])
            } else {
                logger.debug("transfer request refused", metadata: ["http.path": "\(request.uri.path.prefix(200))", "error": "\(refusal)"])
            }
            return refusal.response()
        }
    }

    static func refusal(for error: any Error, _ path: String) -> TransferRefusal {
        if let refusal = error as? TransferRefusal { return refusal }
        if let refusal = TransferRefusal.moved(error) { return refusal }
        if let http = error as? any HTTPResponseError, http.status.code == 404 {
            return TransferRefusal(.noRoute, "no transfer route \(path.prefix(200)); ask for /\(TransferProtocol.pathPrefix)/<cid>")
        }
        if let http = error as? any HTTPResponseError, (400..<500).contains(http.status.code) {
            return TransferRefusal(.badRequest, "\(http.status.reasonPhrase) (\(path.prefix(200)))")
        }
        if let outage = (error as? any OutageDescribing)?.outage {
            return TransferRefusal(.unavailable, outage)
        }
        return TransferRefusal(.internalError, "internal error")
    }
}

/// The endpoint's own headers (`TransferProtocol`) as HTTP field names.
public enum TransferHeader {
    public typealias Name = HTTPFields.Element.Name
    public static let delivery = Name(TransferProtocol.deliveryHeader)!
    public static let secret = Name(TransferProtocol.secretHeader)!
    public static let gen = Name(TransferProtocol.genHeader)!
    public static let version = Name(TransferProtocol.versionHeader)!
    public static let size = Name(TransferProtocol.sizeHeader)!
    public static let rangeChecksum = Name(TransferProtocol.rangeChecksumHeader)!
    public static let checksum = Name(TransferProtocol.checksumHeader)!
    public static let attributes = Name(TransferProtocol.attributesHeader)!
    public static let refusal = Name(TransferProtocol.refusalHeader)!
    public static let signature = Name(TransferProtocol.signatureHeader)!
    public static let inquiry = Name(TransferProtocol.inquiryHeader)!
    public static let range = Name(TransferProtocol.rangeHeader)!
    public static let contentRange = Name(TransferProtocol.contentRangeHeader)!
}
