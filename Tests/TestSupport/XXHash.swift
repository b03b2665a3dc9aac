import Foundation

extension TestFiles {
    /// `xxhsum -H2` (XXH3-128, Debian's xxhash package) of a file: independent of the code under test.
    public static func xxh128(_ path: String) throws -> String {
        guard let xxhsum = ProcessRunner.which("xxhsum") else {
            throw POSIXError(.ENOENT, userInfo: [NSLocalizedDescriptionKey: "xxhsum is not installed (Debian's xxhash package; run Scripts/setup)"])
        }
        let result = try ProcessRunner.run(xxhsum, ["-H2", path])
        guard result.status == 0, let sum = result.stdout.split(separator: " ").first else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "xxhsum -H2 \(path): \(result.stderr)"])
        }
        return String(sum)
    }
}
