import FileMover
import RelocatorCore

/// `noop-move`: every move succeeds at once without touching a file (the benchmark's measure of
/// the queue and the commits alone).
public struct NoopMover: FileMoving {
    public static let checksum = try! Checksum(algorithm: .xxh128, hex: String(repeating: "0", count: 32))

    public init() {}

    public func move(_ request: MoveRequest, hooks: MoveHooks) throws -> MoveResult {
        MoveResult(bytes: 0, checksum: Self.checksum, method: .alreadyInPlace, foundIn: request.source.level)
    }
}
