import Foundation
import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Synchronization
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

    /// A cache miss looks at the path right after its read, on the level's queue of looks and
    /// outside the store's call (a disk that does not answer holds no database session): a
    /// directory swapped for a link once the read returned is seen by this count, and refused.
    @Test func aCacheMissChecksItsPathRightAfterItsReadOutsideTheStoresCall() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("relocator-path-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bronze = root + "/bronze"
        try FileManager.default.createDirectory(atPath: bronze + "/dir", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: bronze + "/a.mp4", contents: Data([1])))
        #expect(FileManager.default.createFile(atPath: bronze + "/dir/b.mp4", contents: Data([2])))
        let store = MemoryStore()
        _ = try store.put([Content(cid: 40, filename: "a.mp4", level: "bronze"), Content(cid: 41, filename: "dir/b.mp4", level: "bronze")])
        let queue = MemoryQueue()
        let gateway = AfterCallStoreGateway(MemoryStoreGateway(store))
        let contents = ContentCache(maxAge: .seconds(86400))
        // (The level table is loaded once, so that the store's next call after the first count is
        // the content's read.)
        let app = App(queue: MemoryQueueGateway(queue), store: gateway, levels: LevelCache(maxAge: .seconds(86400)), contents: contents,
                      directories: LevelDirectories([("bronze", bronze)]), logger: Logger(label: "test.app"))
        // The first count opens the level's directory.
        #expect(try await app.submit(cid: 40, count: 20000).result.outcome == .created)

        // Once the next store call returns, the directory on cid 41's way becomes a link.
        gateway.afterNextCall {
            try? FileManager.default.moveItem(atPath: bronze + "/dir", toPath: root + "/elsewhere")
            try? FileManager.default.createSymbolicLink(atPath: bronze + "/dir", withDestinationPath: root + "/elsewhere")
        }
        await #expect { try await app.submit(cid: 41, count: 20000) } throws: { ($0 as? AppError)?.code == "invalid_filename" }
        #expect(gateway.armed == false)
        #expect(queue.job(41) == nil)
    }
}

extension PathCheckTests {
    /// A level directory replaced after the API opened it (a disk unmounted and another mounted,
    /// a directory swapped): the next look opens the directory its path names now, and a link on
    /// the way there is refused; the tree the level has left is not read.
    @Test func aLevelDirectoryReplacedSinceItWasOpenedIsOpenedAgain() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("relocator-path-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bronze = root + "/bronze"
        try FileManager.default.createDirectory(atPath: bronze, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: bronze + "/a.mp4", contents: Data([1])))
        let store = MemoryStore()
        _ = try store.put([Content(cid: 40, filename: "a.mp4", level: "bronze"), Content(cid: 41, filename: "dir/b.mp4", level: "bronze")])
        let queue = MemoryQueue()
        let app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .seconds(86400)),
                      contents: ContentCache(maxAge: .seconds(86400)), directories: LevelDirectories([("bronze", bronze)]),
                      logger: Logger(label: "test.app"))
        // The first count opens the level's directory.
        #expect(try await app.submit(cid: 40, count: 20000).result.outcome == .created)

        // Another directory at the level's path, where cid 41's way passes through a link.
        try FileManager.default.moveItem(atPath: bronze, toPath: root + "/bronze-before")
        try FileManager.default.createDirectory(atPath: bronze, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bronze + "/dir", withDestinationPath: root + "/elsewhere")
        #expect(FileManager.default.createFile(atPath: root + "/elsewhere/b.mp4", contents: Data([2])))
        await #expect { try await app.submit(cid: 41, count: 20000) } throws: { ($0 as? AppError)?.code == "invalid_filename" }
        #expect(queue.job(41) == nil)
    }
}

/// A store gateway that runs an action once, right after its next call returns.
private final class AfterCallStoreGateway: StoreGateway {
    private let base: MemoryStoreGateway
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    init(_ base: MemoryStoreGateway) { self.base = base }

    func afterNextCall(_ run: @escaping @Sendable () -> Void) { action.withLock { $0 = run } }
    var armed: Bool { action.withLock { $0 != nil } }

    func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T {
        let result = try await base.withStore(body)
        action.withLock { run in defer { run = nil }; return run }?()
        return result
    }
    func open() throws -> any ContentStoring { try base.open() }
    var location: String { base.location }
    func close() {}
}
