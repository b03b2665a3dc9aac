/// A reconcile run's questions to the workers of other hosts: "which of your levels hold content
/// `cid`'s file?" (`GET /transfer/v1/contents/<cid>/inquiry`).
///
/// The run draws an inquiry token and a random secret, and records in Redis, for each content it
/// asks about, the filename it asks after beside the digest of the secret (`ControlKeys.inquiry`,
/// expiring with the run). A request carries the token and the secret in headers; the endpoint
/// hashes the secret and compares it with the recorded digest in constant time, and resolves the
/// filename Redis holds — never one the request names — beneath each level it holds, as the mover
/// resolves every name. It answers with the levels that hold a regular file there and their sizes.
public enum HostInquiry {
    /// The hash field of the secret's digest (every other field is a content id).
    public static let keyField = "key"
    /// The longest inquiry token the endpoint looks up.
    public static let maximumTokenLength = 64

    /// What the endpoint answers.
    public struct Answer: Codable, Equatable, Sendable {
        public struct Found: Codable, Equatable, Sendable {
            public var level: String
            public var size: Int64

            public init(level: String, size: Int64) {
                self.level = level
                self.size = size
            }
        }

        public var cid: Int64
        /// The levels of the answering worker, all of them, looked in.
        public var levels: [String]
        /// Those of them that hold the file as a regular file.
        public var found: [Found]

        public init(cid: Int64, levels: [String], found: [Found]) {
            self.cid = cid
            self.levels = levels
            self.found = found
        }
    }

    /// A token is hex digits only (it is part of a Redis key).
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maximumTokenLength && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
