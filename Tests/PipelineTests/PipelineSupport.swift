import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Three level directories — bronze and silver on the root filesystem, gold on a tmpfs of its own
/// so moves into it cross filesystems — a migrated database with the default levels, and the
/// binary's processes around them.
final class Pipeline: @unchecked Sendable {
    let root: TemporaryDirectory
    let gold: TmpfsMount
    let cluster: Cluster
    let directories: [String: String]
    private let testDatabase: TestDatabase?

    init(database backend: Backend = .sqlite, databaseURL: DatabaseURL? = nil, goldKiB: Int = 256 * 1024,
         goldReadOnly: Bool = false, redis: String? = nil, environment: [String: String] = [:]) throws {
        root = try TemporaryDirectory("relocator-pipeline")
        gold = try TmpfsMount(sizeKiB: goldKiB, readOnly: goldReadOnly)
        let directories = ["bronze": root.path + "/bronze", "silver": root.path + "/silver", "gold": gold.path]
        self.directories = directories
        for (_, path) in directories { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let url: DatabaseURL
        if let databaseURL {
            testDatabase = nil
            url = databaseURL
        } else if backend == .sqlite {
            testDatabase = nil
            url = .sqlite(path: root.path + "/relocator.sqlite")
        } else {
            let test = try TestDatabase(backend)
            testDatabase = test
            url = test.url
        }
        cluster = try Cluster(redis: try redis ?? TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: url,
                              levels: ["gold", "silver", "bronze"].map { ($0, directories[$0]!) }, environment: environment)
        try check(cluster.run(["migrate"]))
        try check(cluster.run(["levels", "--seed-default"]))
    }

    /// Stops every process, unmounts, removes every file and the test database.
    func tearDown() {
        cluster.stop()
        gold.remove()
        root.remove()
        testDatabase?.drop()
    }

    func check(_ result: ProcessResult, _ what: String = "command") throws {
        guard result.status == 0 else { throw ClusterError("\(what) failed (\(result.status)): \(result.stderr)") }
    }

    /// Adds contents (cid, filename, level) and, for those with a size, a file of random bytes on
    /// that level's disk. Returns each file's SHA-256.
    @discardableResult
    func addContents(_ rows: [(cid: Int, filename: String, level: String, bytes: Int?)]) throws -> [Int: String] {
        let csv = root.path + "/contents.csv"
        // A filename with a quote, a comma or a line break is quoted, its quotes doubled (RFC 4180).
        func field(_ text: String) -> String {
            text.contains(where: { "\",\r\n".contains($0) }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        try rows.map { "\($0.cid),\(field($0.filename)),\($0.level)" }.joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        try check(cluster.run(["contents", "import", csv]), "contents import")
        var sums: [Int: String] = [:]
        for row in rows {
            if let bytes = row.bytes {
                sums[row.cid] = try TestFiles.make(directories[row.level]! + "/" + row.filename, bytes: bytes)
            }
        }
        return sums
    }

    func open() throws -> any SQLDatabase { try openDatabase(cluster.database) }

    func level(of cid: Int) throws -> String? {
        let db = try open()
        defer { db.close() }
        return try ContentStore(database: db).content(cid: Int64(cid))?.level
    }

    func relocations() throws -> [Relocation] {
        let db = try open()
        defer { db.close() }
        return try ContentStore(database: db).relocations(limit: 100_000)
    }

    /// `/v1/jobs/<cid>` as JSON (nil on 404).
    func job(_ cid: Int) throws -> [String: Any]? {
        let response = try HTTP.get(cluster.apiPort!, "/v1/jobs/\(cid)")
        return response.status == 200 ? response.json : nil
    }

    /// Where a file is: the levels whose directory holds it.
    func whereIs(_ filename: String) -> [String] {
        directories.filter { TestFiles.exists($0.value + "/" + filename) }.map(\.key).sorted()
    }

    func post(_ cid: Int, _ count: Int) throws -> HTTPResult {
        try HTTP.postForm(cluster.apiPort!, "/post_sentence", [("cid", String(cid)), ("count", String(count))])
    }
}
