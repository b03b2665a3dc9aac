import Foundation
import Testing
import TestSupport

/// The pull's answers to what it finds: a resume whose every byte was verified, a copy at the
/// target no delivery recorded, a source rewritten shorter, a level no host names, a worker that
/// has no such file beside one that has it — each run as worker processes whose level directories
/// are disjoint (the archive's bronze and silver on disk, the edge's gold on /dev/shm).
@Suite struct CrossHostPullTests {
    /// One test's hosts: the workspace, the edge's gold, the archive's bronze and silver.
    struct Hosts {
        let cli: CLIWorkspace
        let edge: TemporaryDirectory
        var gold: String { edge.path + "/gold" }
        var bronze: String { cli.path + "/archive/bronze" }
        var silver: String { cli.path + "/archive/silver" }
        var elsewhere: String { cli.path + "/another-host" }
        let worker = ["worker", "--concurrency", "1", "--metrics-port", "0", "--transfer-listen", "127.0.0.1:0", "--id"]

        init() throws {
            cli = try ContentsTests.workspace()
            edge = try TemporaryDirectory("relocator-edge", under: "/dev/shm")
            for path in [edge.path + "/gold", cli.path + "/archive/bronze", cli.path + "/archive/silver"] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            cli.environment["RELOCATOR_LEVELS"] = "bronze=\(bronze),silver=\(silver),gold=\(gold)"
        }

        func stop() {
            cli.stop()
            edge.remove()
        }

        var edgeLevels: [String: String] { ["RELOCATOR_LEVELS": "bronze=\(elsewhere)/bronze,silver=\(elsewhere)/silver,gold=\(gold)"] }

        func redis(_ arguments: [String]) throws -> String {
            let url = try #require(cli.environment["REDIS_URL"])
            let port = try #require(url.firstMatch(of: /:(\d+)(\/\d+)?$/).flatMap { Int($0.1) }, "\(url)")
            return try RedisProcesses.cli(port: port, arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The committer, the archive (bronze at `bronze`, or given) and the edge, advertised.
        @discardableResult
        func start(edgeFaults: String? = nil, archives: [(String, String)]? = nil, edgeID: String = "edge", options: [String] = []) throws -> ChildProcess {
            try cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
            for (id, directory) in archives ?? [("archive", bronze)] {
                try cli.start(id, worker + [id] + options, environment: ["RELOCATOR_LEVELS": "bronze=\(directory),silver=\(silver),gold=\(elsewhere)/gold"])
            }
            let edge = try cli.start(edgeID, worker + ["edge"] + options, environment: edgeLevels.merging(edgeFaults.map { ["RELOCATOR_FAULTS": $0] } ?? [:]) { $1 })
            for id in (archives ?? [("archive", bronze)]).map(\.0) + ["edge"] {
                try cli.waitUntil("\(id)'s advertisement") { try !redis(["HGET", cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
            }
            return edge
        }

        func level(_ cid: Int) throws -> String? {
            try ContentsTests().listed(cli).first { $0["cid"] as? Int == cid }?["level"] as? String
        }

        func waitForCommit(_ cids: [Int], timeout: Duration = .seconds(60)) throws {
            try cli.waitUntil("the commits of \(cids)", timeout: timeout) { try cids.allSatisfy { try level($0) == "gold" } }
        }

        func job(_ cid: Int, _ field: String) throws -> String { try redis(["HGET", cli.prefix + "job:\(cid)", field]) }
    }

    static func pattern(_ size: Int, _ seed: Int) -> Data {
        Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* (seed | 1) &+ $0 >> 11 &+ seed) })
    }

    /// Killed right after its last chunk was recorded: the resumed delivery has every byte, asks
    /// for none, and goes straight to the whole file's check. The copy takes the source's mode and
    /// times.
    @Test func aPullResumedAfterEveryByteWasVerifiedAsksForNoneAndKeepsTheSourcesModeAndTimes() throws {
        let h = try Hosts()
        defer { h.stop() }
        let chunk = 8 << 20
        try Self.pattern(2 * chunk, 3).write(to: URL(fileURLWithPath: h.bronze + "/whole.bin"))
        #expect(chmod(h.bronze + "/whole.bin", 0o640) == 0)
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_500_000_000, tv_nsec: 987_654_321)]
        #expect(utimensat(AT_FDCWD, h.bronze + "/whole.bin", &times, 0) == 0)
        let sum = try TestFiles.xxh128(h.bronze + "/whole.bin")
        #expect(try h.cli.run(["contents", "import", "-"], input: "5,whole.bin,bronze\n").status == 0)
        let first = try h.start(edgeFaults: "crash-after-chunk=2")
        #expect(try h.cli.run(["enqueue", "--cid", "5", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the kill", timeout: .seconds(60)) { !first.isRunning }
        #expect(try h.job(5, "verified") == "\(2 * chunk)")
        try h.cli.start("edge-again", h.worker + ["edge"], environment: h.edgeLevels)
        try h.waitForCommit([5])
        #expect(h.cli.stderr("edge-again").contains("resuming a transfer after the \(2 * chunk) bytes verified before"), "\(h.cli.stderr("edge-again"))")
        #expect(try TestFiles.xxh128(h.gold + "/whole.bin") == sum)
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/whole.bin"))
        var status = stat()
        #expect(stat(h.gold + "/whole.bin", &status) == 0)
        #expect(status.st_mode & 0o7777 == 0o640)
        #expect(status.st_mtim.tv_sec == 1_500_000_000 && status.st_mtim.tv_nsec == 987_654_321)
    }

    /// A copy at the target that no delivery recorded (a job turned around, whose copy is where it
    /// goes back to): equal to the source by hash, the source goes; different, both are left.
    @Test func aCopyAlreadyAtTheTargetIsComparedWithTheSource() throws {
        let h = try Hosts()
        defer { h.stop() }
        let same = Self.pattern((8 << 20) + 99, 5), other = Self.pattern(4096, 7)
        try same.write(to: URL(fileURLWithPath: h.bronze + "/same.bin"))
        try same.write(to: URL(fileURLWithPath: h.gold + "/same.bin"))
        try other.write(to: URL(fileURLWithPath: h.bronze + "/other.bin"))
        try Self.pattern(4096, 9).write(to: URL(fileURLWithPath: h.gold + "/other.bin"))
        try Data().write(to: URL(fileURLWithPath: h.bronze + "/empty.bin"))
        try Data().write(to: URL(fileURLWithPath: h.gold + "/empty.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "6,same.bin,bronze\n7,other.bin,bronze\n8,empty.bin,bronze\n").status == 0)
        // The hosts share a key: every request is signed (and checked) too.
        try Data("a key both hosts share\n".utf8).write(to: URL(fileURLWithPath: h.cli.path + "/transfer.key"))
        try h.start(options: ["--transfer-secret-file", h.cli.path + "/transfer.key"])
        for cid in ["6", "7", "8"] { #expect(try h.cli.run(["enqueue", "--cid", cid, "--count", "20000"]).status == 0) }
        try h.waitForCommit([6, 8])
        #expect(h.cli.stderr("edge").contains("the copy at the target is equal to the source"), "\(h.cli.stderr("edge"))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/same.bin")) == same)
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/same.bin"))
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/empty.bin"))
        try h.cli.waitUntil("the conflict's dead letter") { try h.job(7, "status") == "dead" }
        #expect(try h.job(7, "reason") == "destination_conflict")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.bronze + "/other.bin")) == other)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/other.bin")) == Self.pattern(4096, 9))
    }

    /// The source rewritten shorter than the prefix a killed delivery kept: the pull starts again
    /// from the first byte and moves the file as it is now.
    @Test func aKeptPrefixLongerThanARewrittenSourceStartsAgain() throws {
        let h = try Hosts()
        defer { h.stop() }
        let chunk = 8 << 20
        try Self.pattern(4 * chunk, 11).write(to: URL(fileURLWithPath: h.bronze + "/shrinks.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "9,shrinks.bin,bronze\n").status == 0)
        // The hosts share a key: every request is signed (and checked) too.
        try Data("a key both hosts share\n".utf8).write(to: URL(fileURLWithPath: h.cli.path + "/transfer.key"))
        let signed = ["--transfer-secret-file", h.cli.path + "/transfer.key"]
        let first = try h.start(edgeFaults: "crash-after-chunk=2", options: signed)
        #expect(try h.cli.run(["enqueue", "--cid", "9", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the kill", timeout: .seconds(60)) { !first.isRunning }
        #expect(try h.job(9, "verified") == "\(2 * chunk)")
        let now = Self.pattern(chunk + 100, 13)
        try now.write(to: URL(fileURLWithPath: h.bronze + "/shrinks.bin"))
        try h.cli.start("edge-again", h.worker + ["edge"] + signed, environment: h.edgeLevels)
        try h.waitForCommit([9])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/shrinks.bin")) == now)
        #expect(!FileManager.default.fileExists(atPath: h.bronze + "/shrinks.bin"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: h.gold + "/.relocator/tmp").isEmpty)
    }

    /// A move from a level the edge's RELOCATOR_LEVELS does not name: no host's worker would serve
    /// it for this one, so it fails for good with its reason instead of waiting for ever.
    @Test func aSourceLevelNamedInNoEntryIsAFailureNotAWait() throws {
        let h = try Hosts()
        defer { h.stop() }
        try Data("bronze\n".utf8).write(to: URL(fileURLWithPath: h.bronze + "/t.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "10,t.bin,bronze\n").status == 0)
        // The edge names silver (another host's) and gold, and no bronze at all.
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        try h.cli.start("archive", h.worker + ["archive"], environment: ["RELOCATOR_LEVELS": "bronze=\(h.bronze),silver=\(h.silver),gold=\(h.elsewhere)/gold"])
        try h.cli.start("edge", h.worker + ["edge"], environment: ["RELOCATOR_LEVELS": "silver=\(h.elsewhere)/silver,gold=\(h.gold)"])
        for id in ["archive", "edge"] {
            try h.cli.waitUntil("\(id)'s advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try h.cli.run(["enqueue", "--cid", "10", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the dead letter") { try h.job(10, "status") == "dead" }
        #expect(try h.job(10, "reason") == "unknown_level")
        #expect(try h.job(10, "last_error").contains("level 'bronze' is named in no RELOCATOR_LEVELS entry"))
        #expect(FileManager.default.fileExists(atPath: h.bronze + "/t.bin"))
    }

    /// Two live workers serve bronze, each from a directory of its own host: the one without the
    /// file is not the last word; a file neither has is missing.
    @Test func oneWorkerWithoutTheFileIsNotFinalWhileAnotherServesTheLevel() throws {
        let h = try Hosts()
        defer { h.stop() }
        let otherBronze = h.cli.path + "/second-archive/bronze"
        // Both prepared as a level (their reserved directory): once one worker recorded bronze as
        // seen, a bronze directory without it would be a bare mountpoint, out of service.
        for directory in [h.bronze, otherBronze] {
            try FileManager.default.createDirectory(atPath: directory + "/.relocator", withIntermediateDirectories: true)
        }
        var rows = ""
        for cid in 11...16 {
            try Self.pattern(5000 + cid, cid).write(to: URL(fileURLWithPath: (cid % 2 == 0 ? h.bronze : otherBronze) + "/f\(cid).bin"))
            rows += "\(cid),f\(cid).bin,bronze\n"
        }
        rows += "17,nowhere.bin,bronze\n"
        try Data("placeholder\n".utf8).write(to: URL(fileURLWithPath: h.bronze + "/nowhere.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: rows).status == 0)
        try FileManager.default.removeItem(atPath: h.bronze + "/nowhere.bin")
        try h.start(archives: [("archive", h.bronze), ("archive2", otherBronze)])
        do {
            try h.cli.waitUntil("both serve bronze") {
                try ["archive", "archive2"].allSatisfy { try h.redis(["HGET", h.cli.prefix + "worker:\($0)", "unavailable"]).isEmpty }
            }
        } catch {
            Issue.record("\(try ["archive", "archive2"].map { try h.redis(["HGETALL", h.cli.prefix + "worker:\($0)"]) }) \(h.cli.stderr("archive2"))")
            throw error
        }
        for cid in 11...17 { #expect(try h.cli.run(["enqueue", "--cid", "\(cid)", "--count", "20000"]).status == 0) }
        do {
            try h.waitForCommit(Array(11...16))
        } catch {
            Issue.record("edge: \(h.cli.stderr("edge").suffix(4000))")
            throw error
        }
        for cid in 11...16 {
            #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/f\(cid).bin")) == Self.pattern(5000 + cid, cid))
            #expect(!FileManager.default.fileExists(atPath: (cid % 2 == 0 ? h.bronze : otherBronze) + "/f\(cid).bin"))
        }
        try h.cli.waitUntil("the missing source's outcome") { try ["dead", "committed", "done"].contains(h.job(17, "status")) }
        let lastError = try h.job(17, "last_error")
        #expect(try h.job(17, "reason") == "source_missing", "\(lastError)")
    }
}

/// A source's worker that answers a pull's requests wrongly on purpose: every other range it
/// sends is longer, shorter or empty (with its own checksum, so only the length tells), the others
/// right (unless `rangesRight`). It serves one file, on 127.0.0.1, one request per connection
/// (`Connection: close`), or, given `keepAlive`, as an HTTP/1.1 endpoint that keeps its
/// connections open, each served on a thread of its own, with the faults `keepAlive` names. A
/// removal is answered `removed`, or for the content ids of `refusals` with the next refusal
/// listed (its status line and code), once each.
final class MisbehavingPeer: @unchecked Sendable {
    /// What a peer that keeps its connections open does wrong (each at most once; GETs counted
    /// from 1 across connections).
    struct KeepAlive {
        /// The answer that locates the file (a HEAD, or a fresh pull's GET of its first range)
        /// goes with the end of the connection (its sending side shut, the answer and the close
        /// corked into the same segments); requests still read.
        var closeAfterLocating = false
        /// The first request on a connection after the answer that located the file there ends
        /// the connection, not answered (the endpoint closed it as the request came).
        var closeOnReuse = false
        /// After the answer that locates the file, in the same write, an answer nobody asked for:
        /// bytes 0 to `count - 1` of the size served, other bytes than the file's, with their own
        /// checksum.
        var unsolicitedAfterLocating: Int?
        /// GET number N is answered, then the connection closed without a word once the next
        /// request has come on it.
        var closeAfterGet: Int?
        /// GET number N is answered with the range of the same length after the one asked, as
        /// its Content-Range says.
        var otherRangeAtGet: Int?
        /// GET number N gets its head and half of its body, once the next request has come on the
        /// connection, and then nothing.
        var stallAtGet: Int?
    }

    /// What is wrong with the answer to the first GET (a fresh pull's, which locates the file),
    /// all else right: its body is half the range asked (its checksum the half's), its range
    /// checksum is not its bytes', or it carries the range of the same length after the one asked
    /// (as its Content-Range says, with its own checksum).
    enum LocatingFault: String {
        case short, wrongChecksum, otherRange
    }

    let data: Data
    let scratch: String
    let rangesRight: Bool
    let keepAlive: KeepAlive?
    let locatingFault: LocatingFault?
    private let fd: Int32
    private(set) var port = 0
    private let lock = NSLock()
    private var gets = 0
    private var served: [String] = []
    private var refusals: [String: [(status: String, code: String)]]
    private var removals: [String] = []
    private var heads: [String] = []
    private var open: Set<Int32> = []
    private var connectionsMade = 0
    private var spoiled = 0
    private var pipelinedAt: [Int] = []
    private var stallEnded = false
    private var faultsDone: Set<String> = []

    init(serving data: Data, scratch: String, rangesRight: Bool = false, refusals: [String: [(status: String, code: String)]] = [:],
         port wanted: Int = 0, keepAlive: KeepAlive? = nil, locatingFault: LocatingFault? = nil) throws {
        self.data = data
        self.locatingFault = locatingFault
        self.scratch = scratch
        self.rangesRight = rangesRight
        self.refusals = refusals
        self.keepAlive = keepAlive
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(wanted).bigEndian
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// What it answered to each GET: `right`, `long`, `short` or `empty`.
    var answers: [String] { lock.withLock { served } }
    /// When it received each GET, and the range it asked for.
    var rangesAsked: [(at: ContinuousClock.Instant, range: String)] { lock.withLock { asked } }
    private var asked: [(at: ContinuousClock.Instant, range: String)] = []
    /// What it answered to each removal: `<cid> removed` or `<cid> <refusal>`.
    var removalAnswers: [String] { lock.withLock { removals } }
    /// The HEADs it answered: the range each asked (empty for none).
    var headsAsked: [String] { lock.withLock { heads } }
    /// How many connections it accepted.
    var connections: Int { lock.withLock { connectionsMade } }
    /// How many requests came on a connection after it was closed or sent unsolicited bytes.
    var requestsOnSpoiledConnections: Int { lock.withLock { spoiled } }
    /// The GETs whose fault waited for the next request, which had come on the same connection.
    var nextAskedBeforeTheFault: [Int] { lock.withLock { pipelinedAt } }
    /// The connection of the stalled answer was closed by the other side.
    var stalledConnectionClosed: Bool { lock.withLock { stallEnded } }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        lock.withLock { for connection in open { shutdown(connection, Int32(SHUT_RDWR)) } }
    }

    private func serve() {
        while true {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { return }
            lock.withLock { connectionsMade += 1 }
            guard keepAlive != nil else {
                handle(connection)
                close(connection)
                continue
            }
            lock.withLock { _ = open.insert(connection) }
            let thread = Thread { [self] in
                converse(connection)
                lock.withLock { _ = open.remove(connection) }
                close(connection)
            }
            thread.start()
        }
    }

    /// The next request's head on `connection` (bytes read beyond it stay in `buffered`), nil when
    /// the connection ends first, or when none came within `patience`.
    private func request(_ connection: Int32, _ buffered: inout [UInt8], patience: Duration? = nil) -> String? {
        let deadline = patience.map { ContinuousClock.now + $0 }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = TestHTTP.endOfHead(buffered) {
                let head = String(decoding: buffered[0..<end], as: UTF8.self)
                buffered.removeFirst(end)
                return head
            }
            if let deadline {
                var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                let left = deadline - ContinuousClock.now
                guard left > .zero, poll(&poller, 1, Int32(left.components.seconds * 1000 + 1)) == 1 else {
                    if ContinuousClock.now >= deadline { return nil }
                    continue
                }
            }
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            buffered += buffer[0..<count]
        }
    }

    /// Whether a request came whole on `connection` within 10 s (it stays in `buffered`).
    private func nextRequestCame(_ connection: Int32, _ buffered: inout [UInt8]) -> Bool {
        var copy = buffered
        guard let head = request(connection, &copy, patience: .seconds(10)) else { return false }
        buffered = Array(head.utf8) + copy
        return true
    }

    /// Reads until the other side closes `connection`; true when a request came meanwhile.
    private func drained(_ connection: Int32, _ buffered: [UInt8]) -> Bool {
        var came = !buffered.isEmpty
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return came }
            came = true
        }
    }

    private func once(_ fault: String) -> Bool { lock.withLock { faultsDone.insert(fault).inserted } }

    private func sendAll(_ connection: Int32, _ bytes: Data) {
        bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let count = send(connection, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                guard count > 0 else { return }
                sent += count
            }
        }
    }

    /// One connection kept open: its requests answered in order, with the faults asked for.
    private func converse(_ connection: Int32) {
        guard let faults = keepAlive else { return }
        var buffered: [UInt8] = []
        var afterLocating = false
        while let head = request(connection, &buffered) {
            if faults.closeOnReuse && afterLocating, once("closeOnReuse") {
                // Closed as the request came, none of it answered.
                shutdown(connection, Int32(SHUT_WR))
                _ = drained(connection, [])
                return
            }
            guard let (answer, get) = respond(head, keepAlive: true) else { return }
            afterLocating = head.hasPrefix("HEAD ") || head.contains("\r\nRange: bytes=0-\(CrossHostPullTests.firstRange - 1)\r\n")
            if afterLocating, faults.closeAfterLocating {
                // The answer and the end of the connection leave together.
                var on: Int32 = 1
                setsockopt(connection, Int32(IPPROTO_TCP), TCP_CORK, &on, socklen_t(MemoryLayout<Int32>.size))
                sendAll(connection, answer)
                shutdown(connection, Int32(SHUT_WR))
                if drained(connection, buffered) { lock.withLock { spoiled += 1 } }
                return
            }
            if afterLocating, let count = faults.unsolicitedAfterLocating, once("unsolicited") {
                let forged = Data(repeating: 0x5A, count: count)
                let extra = "HTTP/1.1 206 Partial Content\r\nRelocator-Size: \(data.count)\r\nRelocator-Version: v1\r\n"
                    + "Content-Range: bytes 0-\(count - 1)/\(data.count)\r\nRelocator-Range-Checksum: xxh128:\((try? checksum(forged)) ?? "")\r\n"
                    + "Content-Length: \(count)\r\n\r\n"
                sendAll(connection, answer + Data(extra.utf8) + forged)
                if drained(connection, buffered) { lock.withLock { spoiled += 1 } }
                return
            }
            if let get, get == faults.stallAtGet {
                let headEnd = TestHTTP.endOfHead(Array(answer.prefix(4096)))!
                if nextRequestCame(connection, &buffered) { lock.withLock { pipelinedAt.append(get) } }
                sendAll(connection, answer.prefix(headEnd + (answer.count - headEnd) / 2))
                _ = drained(connection, buffered)
                lock.withLock { stallEnded = true }
                return
            }
            sendAll(connection, answer)
            if let get, get == faults.closeAfterGet {
                if nextRequestCame(connection, &buffered) { lock.withLock { pipelinedAt.append(get) } }
                // Closed without a word, the next request unanswered.
                shutdown(connection, Int32(SHUT_WR))
                _ = drained(connection, [])
                return
            }
        }
    }

    private func handle(_ connection: Int32) {
        var received: [UInt8] = []
        guard let head = request(connection, &received), let (answer, _) = respond(head, keepAlive: false) else { return }
        sendAll(connection, answer)
    }

    /// The answer to the request whose head is `request`, and its GET's number; nil for a GET
    /// without a range.
    private func respond(_ request: String, keepAlive: Bool) -> (Data, Int?)? {
        let lines = request.components(separatedBy: "\r\n")
        let method = lines[0].split(separator: " ").first.map(String.init) ?? ""
        let range = lines.first { $0.lowercased().hasPrefix("range:") }.map { String($0.dropFirst("range:".count)).trimmingCharacters(in: .whitespaces) }
        var head = ["Relocator-Size: \(data.count)", "Relocator-Version: v1"]
        var body = Data()
        var status = "200 OK"
        var number: Int?
        switch method {
        case "HEAD":
            lock.withLock { heads.append(range ?? "") }
            if let range, let last = Int(range.dropFirst("bytes=0-".count)) {
                head.append("Relocator-Range-Checksum: xxh128:" + ((try? checksum(data.prefix(last + 1))) ?? ""))
            }
            head.append("Content-Length: 0")
        case "GET":
            let bounds = (range ?? "").dropFirst("bytes=".count).split(separator: "-").compactMap { Int($0) }
            guard bounds.count == 2 else { return nil }
            var (first, last) = (bounds[0], min(bounds[1], data.count - 1))
            let fault = lock.withLock { gets == 0 ? locatingFault : nil }
            let (kind, get): (String, Int) = lock.withLock {
                asked.append((.now, range ?? ""))
                gets += 1
                let kind = fault.map { "\($0)" } ?? (gets % 2 == 0 || rangesRight ? "right" : ["long", "short", "empty"][(gets / 2) % 3])
                served.append(kind)
                return (kind, gets)
            }
            number = get
            if get == self.keepAlive?.otherRangeAtGet || fault == .otherRange, last + 1 + (last - first) < data.count {
                (first, last) = (last + 1, last + 1 + (last - first))
            }
            switch kind {
            case "long": body = data[first...min(last + 1000, data.count - 1)] + Data(repeating: 7, count: 1000)
            case "short": body = data[first...(first + (last - first) / 2)]
            case "empty": body = Data()
            default: body = data[first...last]
            }
            status = "206 Partial Content"
            head.append("Content-Range: bytes \(first)-\(last)/\(data.count)")
            head.append("Relocator-Range-Checksum: xxh128:" + ((try? checksum(fault == .wrongChecksum ? body.dropLast() : body)) ?? ""))
            head.append("Content-Length: \(body.count)")
        default:
            let cid = lines[0].split(separator: "/").dropFirst(4).first.map(String.init) ?? ""
            let refusal: (status: String, code: String)? = lock.withLock {
                let next = refusals[cid]?.first
                if next != nil { refusals[cid]?.removeFirst() }
                removals.append("\(cid) \(next?.code ?? "removed")")
                return next
            }
            if let refusal {
                status = refusal.status
                body = Data("{\"error\":\"\(refusal.code)\",\"message\":\"refused on purpose\"}".utf8)
            } else {
                body = Data("{\"outcome\":\"removed\",\"cid\":\(cid)}".utf8)
            }
            head.append("Content-Type: application/json")
            head.append("Content-Length: \(body.count)")
        }
        if !keepAlive { head.append("Connection: close") }
        return (Data(("HTTP/1.1 \(status)\r\n" + head.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body, number)
    }

    private func checksum(_ bytes: Data) throws -> String {
        let path = scratch + "/range-\(UUID().uuidString)"
        try bytes.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TestFiles.xxh128(path)
    }
}

/// Where an HTTP head ends in bytes read.
enum TestHTTP {
    /// The index after the first `\r\n\r\n`, nil until it came.
    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count where bytes[index - 3] == 13 && bytes[index - 2] == 10 && bytes[index - 1] == 13 && bytes[index] == 10 {
            return index + 1
        }
        return nil
    }
}

extension CrossHostPullTests {
    /// A range longer, shorter or emptier than asked is asked again, and nothing beyond the range
    /// asked is written: the copy is the file, byte for byte. The copy's checksum is the one
    /// RELOCATOR_CHECKSUM names.
    @Test func aRangeOtherThanTheOneAskedIsAskedAgainAndNeverWritten() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(2 * (8 << 20) + 5000, 17)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path)
        defer { peer.stop() }
        #expect(try h.cli.run(["contents", "import", "-"], input: "20,far.bin,bronze\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        // The peer's heartbeat, as a worker serving bronze would write it.
        _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
        _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                         "transfer", "127.0.0.1:\(peer.port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
        _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels.merging(["RELOCATOR_CHECKSUM": "sha256"]) { $1 })
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        #expect(try h.cli.run(["enqueue", "--cid", "20", "--count", "20000"]).status == 0)
        try h.waitForCommit([20])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/far.bin")) == data)
        #expect(peer.answers == ["long", "right", "short", "right", "empty", "right"], "\(peer.answers)")
        #expect(try h.job(20, "checksum") == "sha256:" + TestFiles.sha256(h.gold + "/far.bin"))
    }
}

extension CrossHostPullTests {
    /// The answer that locates the source (a fresh pull's GET of its first range) gives the copy
    /// its first bytes only when they are exactly the range asked and equal to their checksum: one
    /// short, with a range checksum that is not its bytes', or whose Content-Range is another
    /// range is not kept, and the file is asked for from its first byte; the copy is the file.
    @Test func aFirstRangeThatIsNotTheOneAskedIsNotKept() throws {
        let h = try Hosts()
        defer { h.stop() }
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        for (index, fault) in [MisbehavingPeer.LocatingFault.short, .wrongChecksum, .otherRange].enumerated() {
            let cid = 60 + index
            let data = Self.pattern((1 << 20) + 777 * index, cid)
            let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, locatingFault: fault)
            defer { peer.stop() }
            // The peer's heartbeat, as a worker serving bronze would write it.
            _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
            _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                             "transfer", "127.0.0.1:\(peer.port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
            _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
            #expect(try h.cli.run(["contents", "import", "-"], input: "\(cid),first-\(fault).bin,bronze\n").status == 0)
            #expect(try h.cli.run(["enqueue", "--cid", "\(cid)", "--count", "20000"]).status == 0)
            try h.waitForCommit([cid])
            #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/first-\(fault).bin")) == data, "\(fault)")
            // The first range asked, then the file from its first byte again (not from after it).
            let asked = peer.rangesAsked.map(\.range)
            #expect(asked.prefix(2) == ["bytes=0-65535", "bytes=0-\(data.count - 1)"], "\(fault): \(asked)")
            #expect(peer.answers.first == "\(fault)", "\(peer.answers)")
        }
    }

    /// The target's high watermark holds for pulls: a file that would lift gold (a small tmpfs)
    /// above it waits as `deferred`, nothing written, the source kept.
    @Test func aPullThatWouldOverfillTheTargetWaits() throws {
        let h = try Hosts()
        let small = try TmpfsMount(sizeKiB: 8192)
        defer {
            h.stop()
            small.remove()
        }
        let gold = small.path + "/gold"
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        h.cli.environment["RELOCATOR_LEVELS"] = "bronze=\(h.bronze),silver=\(h.silver),gold=\(gold)"
        try Self.pattern(6 << 20, 19).write(to: URL(fileURLWithPath: h.bronze + "/big.bin"))
        #expect(try h.cli.run(["contents", "import", "-"], input: "21,big.bin,bronze\n").status == 0)
        #expect(try h.cli.run(["levels", "set", "gold", "--high-water", "50", "--low-water", "30"]).status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        try h.cli.start("archive", h.worker + ["archive"], environment: ["RELOCATOR_LEVELS": "bronze=\(h.bronze),silver=\(h.silver),gold=\(h.elsewhere)/gold"])
        try h.cli.start("edge", h.worker + ["edge"], environment: ["RELOCATOR_LEVELS": "bronze=\(h.elsewhere)/bronze,silver=\(h.elsewhere)/silver,gold=\(gold)"])
        for id in ["archive", "edge"] {
            try h.cli.waitUntil("\(id)'s advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:\(id)", "transfer"]).isEmpty }
        }
        #expect(try h.cli.run(["enqueue", "--cid", "21", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the deferral") { try h.job(21, "status") == "deferred" }
        #expect(try h.job(21, "defer_reason").contains("gold"))
        #expect(!FileManager.default.fileExists(atPath: gold + "/big.bin"))
        #expect(try h.job(21, "verified").isEmpty, "nothing was asked for")
        #expect(FileManager.default.fileExists(atPath: h.bronze + "/big.bin"))
    }
}

extension CrossHostPullTests {
    /// The puller withdraws its published copy only when the source's side answers that the source
    /// is a newer version than the one copied (`version_changed`): then the copy is removed and the
    /// move starts again. Any other refusal of the removal (here `checksum_mismatch`) leaves the
    /// published copy in place, for an operator.
    @Test func onlyANewerSourceVersionWithdrawsThePublishedCopy() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(5000, 23)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true,
                                       refusals: ["30": [("409 Conflict", "checksum_mismatch")], "31": [("412 Precondition Failed", "version_changed")]])
        defer { peer.stop() }
        #expect(try h.cli.run(["contents", "import", "-"], input: "30,kept.bin,bronze\n31,withdrawn.bin,bronze\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
        _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                         "transfer", "127.0.0.1:\(peer.port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
        _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        #expect(try h.cli.run(["enqueue", "--cid", "30", "--count", "20000"]).status == 0)
        #expect(try h.cli.run(["enqueue", "--cid", "31", "--count", "20000"]).status == 0)
        // Refused as another version: withdrawn, pulled again, and removed the second time.
        try h.waitForCommit([31])
        #expect(h.cli.stderr("edge").contains("the copy at gold/withdrawn.bin is withdrawn"), "\(h.cli.stderr("edge").suffix(3000))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/withdrawn.bin")) == data)
        // Refused for a checksum that differs: the copy stays, the job waits for an operator.
        try h.cli.waitUntil("the conflict's dead letter") { try h.job(30, "status") == "dead" }
        #expect(try h.job(30, "reason") == "destination_conflict")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/kept.bin")) == data)
        #expect(peer.removalAnswers.filter { $0.hasPrefix("30 ") } == ["30 checksum_mismatch"])
        #expect(peer.removalAnswers.filter { $0.hasPrefix("31 ") } == ["31 version_changed", "31 removed"])
    }
}

extension CrossHostPullTests {
    /// A pull whose source's worker cannot be reached (nothing listens at its address yet) waits in
    /// its slot: the job stays `moving` under the same delivery, counting no attempt, and the pull
    /// goes on by itself once the worker listens there.
    @Test func aPullWaitsInItsSlotForASourcesWorkerThatCannotBeReached() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(3 << 20, 29)
        // A port nothing listens on until the peer starts (taken, then given back).
        let probe = try MisbehavingPeer(serving: data, scratch: h.cli.path)
        let port = probe.port
        probe.stop()
        #expect(try h.cli.run(["contents", "import", "-"], input: "40,late.bin,bronze\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
        _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                         "transfer", "127.0.0.1:\(port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
        _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        #expect(try h.cli.run(["enqueue", "--cid", "40", "--count", "20000"]).status == 0)
        try h.cli.waitUntil("the wait for the source's worker") { h.cli.stderr("edge").contains("the source's worker cannot be reached") }
        let (token, attempts) = (try h.job(40, "token"), try h.job(40, "attempts"))
        // Asked again every second for a few seconds, in the same delivery.
        try h.cli.waitUntil("three seconds of waiting", timeout: .seconds(30)) {
            (try? h.job(40, "started_at")).flatMap { Int64($0) }.map { Int64(Date().timeIntervalSince1970 * 1000) - $0 >= 3000 } == true
        }
        #expect(try h.job(40, "status") == "moving")
        #expect(try h.job(40, "token") == token, "the same delivery")
        #expect(try h.job(40, "attempts") == attempts, "no attempt counted")
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, port: port)
        defer { peer.stop() }
        try h.waitForCommit([40])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/late.bin")) == data)
        #expect(peer.removalAnswers == ["40 removed"])
    }
}

extension CrossHostPullTests {
    /// The target level's bandwidth limit paces a pull: under 4 MB/s, ranges of at most 1 MiB are
    /// asked, each once paid for, so the last is asked no sooner than the time the bytes before it
    /// take at that rate (the bucket starts empty and holds a tenth of a second). Unpaced, the
    /// ranges would all be asked at once.
    @Test func aBandwidthLimitPacesThePullsRanges() throws {
        let h = try Hosts()
        defer { h.stop() }
        let size = 6 << 20, rate = 4_000_000
        let data = Self.pattern(size, 31)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true)
        defer { peer.stop() }
        #expect(try h.cli.run(["contents", "import", "-"], input: "50,paced.bin,bronze\n").status == 0)
        #expect(try h.cli.run(["levels", "set", "gold", "--bandwidth", "4MB"]).status == 0)
        // The rebalancer publishes the level table the workers pace by.
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0", "--rebalance-interval", "1s"])
        _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
        _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                         "transfer", "127.0.0.1:\(peer.port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
        _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
        try h.cli.waitUntil("the level table's publication") { try h.redis(["GET", h.cli.prefix + "placement"]).contains("\(rate)") }
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        // Its heartbeat renewed since it listens: its maintenance round has read the table.
        let beat = try h.redis(["HGET", h.cli.prefix + "worker:edge", "beat_at"])
        try h.cli.waitUntil("the edge's next heartbeat") { try h.redis(["HGET", h.cli.prefix + "worker:edge", "beat_at"]) != beat }
        #expect(try h.cli.run(["enqueue", "--cid", "50", "--count", "20000"]).status == 0)
        try h.waitForCommit([50])
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/paced.bin")) == data)
        let asked = peer.rangesAsked
        let lengths = asked.compactMap { entry -> Int? in
            let bounds = entry.range.dropFirst("bytes=".count).split(separator: "-").compactMap { Int($0) }
            return bounds.count == 2 ? bounds[1] - bounds[0] + 1 : nil
        }
        #expect(lengths.count == asked.count && lengths.allSatisfy { $0 <= 1 << 20 } && lengths.reduce(0, +) == size, "\(asked.map(\.range))")
        // Paid before asked: the last range no sooner than (all but the first range's bytes) / rate
        // after the first, less the bucket's tenth of a second and a margin.
        let spread = try #require(asked.last).at - (try #require(asked.first)).at
        let least = Duration.seconds(Double(size - (1 << 20)) / Double(rate) - 0.25)
        #expect(spread >= least, "ranges asked over \(spread), at least \(least) at \(rate) B/s")
    }
}

/// A source's worker that keeps its connections open (HTTP/1.1): the pull asks its ranges on one
/// connection, the next before the last is read, and uses idle connections again; what the
/// endpoint does to a connection meanwhile never gives a range the bytes of another, nor stops
/// the pull.
extension CrossHostPullTests {
    static let chunk = 8 << 20
    /// How many bytes a fresh pull's first request asks for (`Worker.pullFirstRange`).
    static let firstRange = 64 << 10

    /// `size` random bytes.
    static func random(_ size: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        var words = [UInt64](repeating: 0, count: (size + 7) / 8)
        for index in words.indices { words[index] = generator.next() }
        return words.withUnsafeBytes { Data($0.prefix(size)) }
    }

    /// The ranges a pull of `size` bytes asks, in order, when none is asked twice: a fresh pull's
    /// first (the request that locates the file), the rest of the first chunk, then chunk after
    /// chunk; a resumed one's from `start` (a multiple of the chunk).
    static func ranges(_ size: Int, from start: Int = 0) -> [String] {
        let rest = { (from: Int) in stride(from: from, to: size, by: chunk).map { "bytes=\($0)-\(min($0 + chunk, size) - 1)" } }
        guard start == 0 else { return rest(start) }
        return ["bytes=0-\(firstRange - 1)"] + (size > firstRange ? ["bytes=\(firstRange)-\(min(chunk, size) - 1)"] : []) + rest(chunk)
    }

    /// Pulls content `cid` (`name`) from `peer`, advertised as the worker serving bronze, into
    /// the edge's gold, and waits for its commit.
    func pull(_ h: Hosts, _ cid: Int, _ name: String, from peer: MisbehavingPeer, timeout: Duration = .seconds(60)) throws {
        #expect(try h.cli.run(["contents", "import", "-"], input: "\(cid),\(name),bronze\n").status == 0)
        try h.cli.start("committer", ["committer", "--id", "c1", "--metrics-port", "0"])
        _ = try h.redis(["SADD", h.cli.prefix + "workers", "peer"])
        _ = try h.redis(["HSET", h.cli.prefix + "worker:peer", "kind", "worker", "directories", "bronze=/elsewhere/bronze",
                         "transfer", "127.0.0.1:\(peer.port)", "beat_at", "\(Int64(Date().timeIntervalSince1970 * 1000))"])
        _ = try h.redis(["PEXPIRE", h.cli.prefix + "worker:peer", "600000"])
        try h.cli.start("edge", h.worker + ["edge"], environment: h.edgeLevels)
        try h.cli.waitUntil("the edge's advertisement") { try !h.redis(["HGET", h.cli.prefix + "worker:edge", "transfer"]).isEmpty }
        #expect(try h.cli.run(["enqueue", "--cid", "\(cid)", "--count", "20000"]).status == 0)
        do {
            try h.waitForCommit([cid], timeout: timeout)
        } catch {
            Issue.record("edge: \(h.cli.stderr("edge").suffix(4000))")
            throw error
        }
    }

    /// The endpoint closed the connection the file was located on, right after the answer: the
    /// pull asks nothing more on it, and its ranges go, each once, on a new one.
    @Test func anIdleConnectionTheEndpointClosedIsAskedNothing() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(2 * Self.chunk + 3000, 37)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, keepAlive: .init(closeAfterLocating: true))
        defer { peer.stop() }
        try pull(h, 60, "closed.bin", from: peer)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/closed.bin")) == data)
        #expect(peer.requestsOnSpoiledConnections == 0, "no request went on the closed connection")
        #expect(peer.rangesAsked.map(\.range) == Self.ranges(data.count))
        #expect(peer.headsAsked == [], "one pull, never started again, located by its first range")
        #expect(!h.cli.stderr("edge").contains("cannot be reached"), "\(h.cli.stderr("edge").suffix(3000))")
    }

    /// The endpoint closes an idle connection just as the next request comes on it (none of it is
    /// answered): the request is asked again on a new connection, within the same pull.
    @Test func aRequestOnAConnectionClosedAsItCameIsAskedAgainOnANewOne() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(2 * Self.chunk + 3000, 41)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, keepAlive: .init(closeOnReuse: true))
        defer { peer.stop() }
        try pull(h, 61, "reused.bin", from: peer)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/reused.bin")) == data)
        #expect(peer.rangesAsked.map(\.range) == Self.ranges(data.count), "each range answered once, as asked")
        #expect(peer.headsAsked == [], "one pull, never started again, located by its first range")
        #expect(peer.connections == 2)
        #expect(!h.cli.stderr("edge").contains("cannot be reached"), "\(h.cli.stderr("edge").suffix(3000))")
    }

    /// The endpoint closes the connection after an answer without saying so, the next range asked
    /// on it already: that range is asked again on a new connection, within the same pull. There,
    /// an answer carrying another range (the one after it, of the same length, with its own
    /// checksum) is not taken for the range asked.
    @Test func aConnectionClosedWithoutAWordAfterAnAnswerIsAskedAgainAndNoRangeTakesAnothersBytes() throws {
        let h = try Hosts()
        defer { h.stop() }
        // Random bytes: `pattern`'s repeat every 512 KiB, and a range would equal the one after it.
        let data = Self.random(4 * Self.chunk + 3000)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true,
                                       keepAlive: .init(closeAfterGet: 2, otherRangeAtGet: 3))
        defer { peer.stop() }
        try pull(h, 62, "silent.bin", from: peer)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/silent.bin")) == data)
        // (GET 1 is the first range's, which located the file.)
        #expect(peer.nextAskedBeforeTheFault == [2], "the third range was asked before the second was read")
        let ranges = Self.ranges(data.count)
        // The third range asked again after the close, and once more after the answer of another.
        #expect(Array(peer.rangesAsked.map(\.range).prefix(4)) == [ranges[0], ranges[1], ranges[2], ranges[2]], "\(peer.rangesAsked.map(\.range))")
        #expect(peer.headsAsked == [], "one pull, never started again")
        #expect(!h.cli.stderr("edge").contains("cannot be reached"), "\(h.cli.stderr("edge").suffix(3000))")
    }

    /// A body that stops halfway (the next range asked already) is a read that times out (10 s):
    /// the connection is dropped, the half range is not counted, and the pull, asked again, resumes
    /// after the ranges verified before it.
    @Test func aBodyThatStopsHalfwayIsDroppedAndThePullResumesAfterWhatWasVerified() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(3 * Self.chunk + 3000, 47)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, keepAlive: .init(stallAtGet: 3))
        defer { peer.stop() }
        try pull(h, 63, "stalled.bin", from: peer, timeout: .seconds(90))
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/stalled.bin")) == data)
        // (GET 1 is the first range's, which located the file.)
        #expect(peer.nextAskedBeforeTheFault == [3], "the fourth range was asked before the third was read")
        #expect(peer.stalledConnectionClosed)
        // Asked again from the second range's end, the first chunk's (the first two were recorded
        // verified together); the half of the third was never recorded. The resumed pull locates
        // with HEAD.
        let verified = Self.chunk
        #expect(peer.headsAsked == ["", "bytes=0-\(verified - 1)"])
        #expect(h.cli.stderr("edge").contains("resuming a transfer after the \(verified) bytes verified before"), "\(h.cli.stderr("edge").suffix(3000))")
        let ranges = Self.ranges(data.count)
        #expect(peer.rangesAsked.map(\.range) == [ranges[0], ranges[1], ranges[2]] + Array(ranges[2...]), "\(peer.rangesAsked.map(\.range))")
    }

    /// Bytes no request asked for, on a connection kept idle (here an answer to the first range,
    /// with other bytes than the file's): the connection is not used again, so they are taken
    /// for no request's answer.
    @Test func bytesNoRequestAskedForMakeAnIdleConnectionUnusable() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.pattern(100_000, 53)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, keepAlive: .init(unsolicitedAfterLocating: data.count))
        defer { peer.stop() }
        try pull(h, 64, "unasked.bin", from: peer)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/unasked.bin")) == data)
        #expect(peer.requestsOnSpoiledConnections == 0, "no request went on the connection")
        #expect(peer.rangesAsked.map(\.range) == Self.ranges(data.count))
        #expect(peer.headsAsked == [])
    }

    /// A file no larger than a fresh pull's first range is located and pulled by one request: the
    /// source's worker is asked nothing else (no HEAD) before the removal, on the one connection.
    @Test func aSmallFileIsPulledByOneRequestBeforeItsRemoval() throws {
        let h = try Hosts()
        defer { h.stop() }
        let data = Self.random(4096)
        let peer = try MisbehavingPeer(serving: data, scratch: h.cli.path, rangesRight: true, keepAlive: .init())
        defer { peer.stop() }
        try pull(h, 65, "small.bin", from: peer)
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.gold + "/small.bin")) == data)
        #expect(peer.headsAsked == [])
        #expect(peer.rangesAsked.map(\.range) == ["bytes=0-\(Self.firstRange - 1)"])
        #expect(peer.removalAnswers == ["65 removed"])
        #expect(peer.connections == 1, "the removal asked on the connection the file came on")
        // The route of the worker asked first was recorded with the secret, before that request.
        #expect(try h.job(65, "transfer_key").hasPrefix(try h.job(65, "token") + ":"))
    }
}
