import Foundation
import Testing
import TestSupport

/// The first run: what `Scripts/setup` installs for the demo, and `Scripts/demo --keep` (on the
/// built binary, `RELOCATOR_BIN`) leaving everything up with an environment one can paste.
@Suite struct ScriptsTests {
    static let scripts = TestEnvironment.packageRoot.appendingPathComponent("Scripts")

    func packages(_ arguments: [String]) throws -> Set<String> {
        let result = try ProcessRunner.run(Self.scripts.appendingPathComponent("setup"), arguments + ["--list"])
        #expect(result.status == 0, "\(result.stderr)")
        return Set(result.stdout.split(separator: "\n").map(String.init))
    }

    @Test func theDemoInstallsWhatItNeedsAndNothingForTheTests() throws {
        let demo = try packages(["--demo"])
        for needed in ["redis-server", "redis-tools", "libhiredis-dev", "libpq-dev", "libmariadb-dev", "libsqlite3-dev", "libxxhash-dev", "curl", "python3"] {
            #expect(demo.contains(needed), "\(needed)")
        }
        for unneeded in ["mariadb-server", "postgresql", "chromium", "prometheus", "wrk", "strace", "rsync", "playwright (PyPI)"] {
            #expect(!demo.contains(unneeded), "\(unneeded)")
        }
        #expect(try packages(["--demo", "--postgres"]) == demo.union(["postgresql", "postgresql-client"]))
        #expect(try packages(["--build"]).isSubset(of: demo))
        let tests = try packages([])
        #expect(demo.isSubset(of: tests) && tests.isSuperset(of: ["mariadb-server", "chromium", "prometheus", "wrk", "openssl", "playwright (PyPI)"]))
        // The benchmark's peers come only with --bench, from their requirements file.
        #expect(try packages(["--bench"]) == tests.union(["flask (PyPI)", "gunicorn (PyPI)", "rq (PyPI)", "redis (PyPI)", "psycopg2-binary (PyPI)"]))
    }

    @Test func theDemoWithKeepPrintsTheDashboardAndAnEnvironmentToPasteWhileItRuns() throws {
        let output = try TemporaryDirectory("relocator-demo-test")
        defer { output.remove() }
        let binary = try TestEnvironment.relocatorBinary()
        var environment = ProcessInfo.processInfo.environment
        for name in ["REDIS_URL", "DATABASE_URL", "RELOCATOR_LEVELS", "RELOCATOR_PREFIX", "RELOCATOR_SERVICES_DIR"] { environment[name] = nil }
        environment["RELOCATOR_BIN"] = binary.path
        let demo = try ChildProcess(Self.scripts.appendingPathComponent("demo").path, ["--keep"], environment: environment,
                                    stdoutPath: output.path + "/demo.out", stderrPath: output.path + "/demo.err",
                                    directory: output.path)
        defer {
            demo.signal(SIGTERM)
            _ = demo.wait(timeout: .seconds(60))
        }
        func printed() -> String { (try? String(contentsOfFile: output.path + "/demo.out", encoding: .utf8)) ?? "" }
        let deadline = ContinuousClock.now + .seconds(300)
        while !printed().contains("relocator enqueue --cid 5") {
            guard demo.isRunning, ContinuousClock.now < deadline else {
                Issue.record("the demo did not reach its --keep wait: \(printed().suffix(3000))\n\(((try? String(contentsOfFile: output.path + "/demo.err", encoding: .utf8)) ?? "").suffix(2000))")
                return
            }
            usleep(200_000)
        }
        let text = printed()
        #expect(!text.contains("(moved on)"))
        #expect(!text.contains("run Scripts/demo --keep"), "\(text)")
        // The dashboard's address, while the dashboard lives.
        let port = try #require(text.firstMatch(of: /the dashboard is at http:\/\/127\.0\.0\.1:(\d+)\/ui/).flatMap { Int($0.1) }, "\(text)")
        #expect(try HTTP.get(port, "/ui").status == 200)
        // Workers and the committer serve their metrics by default; the demo names where.
        #expect(text.contains("worker worker-1 serves its metrics at http://127.0.0.1:"), "\(text)")
        // The environment, pasted into a shell, reaches the demo's Redis and database.
        let exports = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("export ") }
        #expect(exports.count == 2, "\(text)")
        for name in ["REDIS_URL=", "DATABASE_URL=sqlite:", "RELOCATOR_LEVELS=gold=", "RELOCATOR_PREFIX="] {
            #expect(exports.first?.contains(name) == true, "\(name): \(exports)")
        }
        let script = exports.map { $0.components(separatedBy: "     #").first! }.joined(separator: "\n") + "\nrelocator status --json\n"
        var shell = ProcessInfo.processInfo.environment
        for name in ["REDIS_URL", "DATABASE_URL", "RELOCATOR_LEVELS", "RELOCATOR_PREFIX"] { shell[name] = nil }
        shell["PATH"] = "/usr/bin:/bin"
        let status = try ProcessRunner.run(URL(fileURLWithPath: "/bin/bash"), ["-c", script], environment: shell)
        #expect(status.status == 0, "\(script)\n\(status.stderr)")
        let totals = try #require((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["totals"] as? [String: Any])
        #expect((totals["committed"] as? Int ?? 0) >= 20, "\(totals)")

        // Ctrl-C: everything stops and the demo's directory goes.
        let work = try #require(text.firstMatch(of: /everything keeps running in (\S+);/).map { String($0.1) }, "\(text)")
        demo.signal(SIGINT)
        #expect(demo.wait(timeout: .seconds(60)) != nil)
        #expect(!FileManager.default.fileExists(atPath: work))
        #expect(throws: (any Error).self) { try HTTP.get(port, "/healthz") }
    }
}
