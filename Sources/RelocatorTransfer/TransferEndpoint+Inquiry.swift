import FileMover
import Foundation
import Hummingbird
import RelocatorCore

extension TransferEndpoint {
    /// `GET …/<cid>/inquiry`: which of this worker's levels hold the file a reconcile run asks
    /// about (`HostInquiry`). The run's token and secret are checked against what it recorded in
    /// Redis, in constant time; the filename is the one recorded there, resolved beneath each held
    /// level (a link on the way is `unsafe_path`). Nothing is read of the file but its status.
    func inquiry(_ request: Request, cid text: String) async throws -> Response {
        guard let token = request.headers[TransferHeader.inquiry], !token.isEmpty else {
            throw TransferRefusal(.missingCredential, "the request carries no inquiry token (\(TransferProtocol.inquiryHeader))")
        }
        guard let secret = request.headers[TransferHeader.secret], !secret.isEmpty else {
            throw TransferRefusal(.missingCredential, "the request carries no secret (\(TransferProtocol.secretHeader))")
        }
        try checkSignature(request, cid: text)
        guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }), let cid = Int64(text) else {
            throw TransferRefusal(.invalidCID, "a content id is a non-negative decimal number (got '\(text.prefix(64))')")
        }
        guard HostInquiry.isToken(token), secret.utf8.count <= TransferProtocol.maximumSecretLength else {
            throw TransferRefusal(.wrongCredential, "the credentials are not those of an inquiry that asks about content \(cid)")
        }
        let recorded = try await queue.withSession { session -> [String] in
            guard case .names(let values) = try session.control(.inquiry(token: token, cid: cid)) else { return [] }
            return values
        }
        // Compared whatever was found: an unknown token costs the same as a wrong secret.
        let expected = recorded.count == 2 ? recorded[0] : ""
        let matches = ConstantTime.equal(Array(TransferSecret.digest(of: secret).utf8), Array(expected.utf8))
        guard matches, recorded.count == 2 else {
            throw TransferRefusal(.wrongCredential, "the credentials are not those of an inquiry that asks about content \(cid)")
        }
        let filename: Filename
        do {
            filename = try Filename(recorded[1])
        } catch {
            throw TransferRefusal(.invalidFilename, "the filename asked after \(recorded[1].debugDescription.prefix(200)): \(error)")
        }
        // Only levels in service are looked in (and named as looked in): a level unmounted under
        // the worker would say "not here" of files that are. Each level is looked at on its own
        // queue of looks, all at once: one whose disk does not answer within the patience is not
        // named as looked in either.
        let roots = levels.roots.filter { $0.value.withdrawn == nil && levels.markedOutOfService($0.key) == nil }
        let looks = self.looks
        let outcomes = await withTaskGroup(of: (String, DiskLooks.Outcome<LevelRoot.FileStatus?>).self) { group in
            for (level, root) in roots {
                group.addTask {
                    (level, await looks.look(level) { (try? root.stillInPlace()) == true ? try root.lookup(filename) : nil })
                }
            }
            var outcomes: [(String, DiskLooks.Outcome<LevelRoot.FileStatus?>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }
        }
        var looked: [String] = []
        var found: [HostInquiry.Answer.Found] = []
        for (level, outcome) in outcomes {
            guard case .answered(let result) = outcome else { continue }
            // (A level whose directory is no longer the one held is skipped, as one out of service.)
            guard let status = try result.get() else { continue }
            looked.append(level)
            if case .regularFile(let size) = status {
                found.append(HostInquiry.Answer.Found(level: level, size: size))
            }
        }
        var buffer = ByteBuffer()
        buffer.writeBytes(try JSONEncoder().encode(HostInquiry.Answer(cid: cid, levels: looked, found: found)))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}
