import CXXHash
import Crypto
import RelocatorCore
import SystemPackage

/// A hash being computed over a stream of chunks: XXH3-128 through libxxhash's streaming API, or
/// SHA-256 through swift-crypto. Used by one thread at a time.
final class RunningHash {
    let algorithm: ChecksumAlgorithm
    /// One of the two, by `algorithm`.
    private var xxh: OpaquePointer?
    private var sha: SHA256?

    init(_ algorithm: ChecksumAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .xxh128:
            guard let state = XXH3_createState() else { fatalError("libxxhash: out of memory for an XXH3 state") }
            XXH3_128bits_reset(state)
            xxh = state
        case .sha256:
            sha = SHA256()
        }
    }

    deinit {
        if let xxh { XXH3_freeState(xxh) }
    }

    /// A hash with everything passed to this one so far, which goes on by itself.
    func copy() -> RunningHash {
        let other = RunningHash(algorithm)
        if let xxh, let into = other.xxh { XXH3_copyState(into, xxh) } else { other.sha = sha }
        return other
    }

    /// Forgets everything passed to `update`.
    func reset() {
        if let xxh { XXH3_128bits_reset(xxh) } else { sha = SHA256() }
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if let xxh {
            relocator_xxh3_128bits_update(xxh, bytes.baseAddress, bytes.count)
        } else {
            sha!.update(bufferPointer: bytes)
        }
    }

    /// The digest of everything passed to `update`.
    func finalize() -> Checksum {
        let hex: String
        if let xxh {
            // The canonical form (XXH128_canonicalFromHash, what xxhsum prints): the high half
            // first, each half big-endian.
            let digest = XXH3_128bits_digest(xxh)
            hex = Self.hex(digest.high64) + Self.hex(digest.low64)
        } else {
            hex = Self.hex(bytes: Array(sha!.finalize()))
        }
        do {
            return try Checksum(algorithm: algorithm, hex: hex)
        } catch {
            fatalError("a \(algorithm) digest of the wrong length: \(error)")
        }
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func hex(bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 16 hex digits, most significant first.
    static func hex(_ value: UInt64) -> String {
        hex(bytes: (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
    }
}

/// Two chunk buffers, page-aligned: the mover's whole working memory for one move.
final class ChunkBuffers {
    let chunkSize: Int
    private var storage: [UnsafeMutableRawBufferPointer] = []

    init(chunkSize: Int) {
        self.chunkSize = chunkSize
    }

    deinit { storage.forEach { $0.deallocate() } }

    /// Before the first use: buffers no bigger than a file of `size` bytes needs (a small file's
    /// move then neither maps nor touches a whole chunk of memory). A file that grew meanwhile
    /// is still read whole, in more pieces.
    func fit(_ size: Int64) {
        guard storage.isEmpty else { return }
        // The size is the file system's (a sparse file may claim up to Int64.max): bounded by a
        // chunk before it is rounded up to whole pages.
        let bounded = min(max(size, 0), Int64(chunkSize))
        allocate(Int(min(Int64(chunkSize), max(4096, (bounded + 4095) / 4096 * 4096))))
    }

    /// Chunks at most this small are hashed on the calling thread: handing them to another
    /// thread costs more than it overlaps.
    static let inlineHashing = 256 << 10

    subscript(_ index: Int) -> UnsafeMutableRawBufferPointer {
        if storage.isEmpty { allocate(chunkSize) }
        return storage[index]
    }

    private func allocate(_ bytes: Int) {
        storage = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 4096) }
    }
}

extension Descriptor {
    /// Fills `buffer` from `offset` as far as the file goes; 0 at its end.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            let count: Int
            do {
                count = try fd.read(fromAbsoluteOffset: offset + Int64(filled), into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            } catch {
                throw MoveError.system("cannot read", display, error)
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        do {
            try fd.writeAll(toAbsoluteOffset: offset, bytes)
        } catch {
            throw MoveError.system("cannot write", display, error)
        }
    }

    /// The checksum and size of the file from its start. Chunk i + 1 is read while chunk i is
    /// hashed on another thread of `BlockingExecutor.shared`.
    func hash(_ algorithm: ChecksumAlgorithm, buffers: ChunkBuffers, progress: (Int64) throws -> Void = { _ in }) throws -> (Checksum, Int64) {
        let hash = RunningHash(algorithm)
        var total: Int64 = 0
        var current = 0
        var length = try read(into: buffers[0], at: 0)
        while length > 0 {
            let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<length])
            let next: Result<Int, any Error>
            if length <= ChunkBuffers.inlineHashing {
                hash.update(chunk)
                next = Result { try read(into: buffers[1 - current], at: total + Int64(length)) }
            } else {
                let hashing = BlockingExecutor.shared.start { hash.update(chunk) }
                next = Result { try read(into: buffers[1 - current], at: total + Int64(length)) }
                try hashing.wait()
            }
            total += Int64(length)
            try progress(total)
            length = try next.get()
            current = 1 - current
        }
        return (hash.finalize(), total)
    }
}

extension FileMover {
    /// The checksum of a file as the workers compute it (for `relocator checksum`): XXH3-128 is
    /// `xxhsum -H2`'s hash, SHA-256 `sha256sum`'s. Follows a symbolic link, as those tools do.
    public func checksum(of path: String, algorithm: ChecksumAlgorithm) throws -> Checksum {
        let file: Descriptor
        do {
            // Non-blocking: opening a FIFO would otherwise wait for a writer for ever (it is then
            // refused below, as any file that is not a regular one).
            file = Descriptor(try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking]), display: path)
        } catch {
            throw MoveError.system("cannot open", path, error)
        }
        let status = try file.stat()
        guard status.isRegularFile else { throw MoveError(.notRegularFile, "\(path) is \(status.typeDescription)") }
        return try file.hash(algorithm, buffers: ChunkBuffers(chunkSize: chunkSize)).0
    }
}
