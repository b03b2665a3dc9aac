import Foundation
import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing

/// The API's check that a content's path passes through no symbolic link (on its level's
/// directory, as a worker resolves it) is made once per read of the content, not on every count.
@Suite struct PathCheckTests {
    @Test func aPathIsLookedAtOncePerContentReadAndAgainOnTheNextRead() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("relocator-path-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bronze = root + "/bronze"
        try FileManager.default.createDirectory(atPath: bronze + "/dir", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: bronze + "/dir/a.mp4", contents: Data([1, 2, 3])))
        let store = MemoryStore()
        _ = try store.put([Content(cid: 30, filename: "dir/a.mp4", level: "bronze")])
        let queue = MemoryQueue()
        // (Entries kept long enough for a loaded machine: the test is about reads, not their age.)
        let contents = ContentCache(maxAge: .seconds(86400))
        let app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero), contents: contents,
                      directories: LevelDirectories([("bronze", bronze)]), logger: Logger(label: "test.app"))
        #expect(try await app.submit(cid: 30, count: 20000).result.outcome == .created)
        #expect(contents.entry(30)?.pathCheckedOn == "bronze")

        // The directory on the way swapped for a link to it: the cached verdict stands for the
        // counts of this read…
        try FileManager.default.moveItem(atPath: bronze + "/dir", toPath: root + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: bronze + "/dir", withDestinationPath: root + "/elsewhere")
        #expect(try await app.submit(cid: 30, count: 25000).result.outcome == .updated)
        #expect(queue.job(30)?.count == 25000)
        // …and the next read looks again, and refuses it.
        contents.clear()
        await #expect { try await app.submit(cid: 30, count: 30000) } throws: { ($0 as? AppError)?.code == "invalid_filename" }
        #expect(contents.entry(30)?.pathCheckedOn == nil)
        #expect(queue.job(30)?.count == 25000)
    }
}
