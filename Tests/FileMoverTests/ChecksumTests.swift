import FileMover
import Foundation
import RelocatorCore
import Testing
import TestSupport

/// Checksums as recorded (`xxh128:` / `sha256:` / bare hex of old records) and as computed: the
/// same as Debian's `xxhsum -H2` and coreutils' `sha256sum`. Temporary file names.
@Suite struct ChecksumTests {
    @Test func checksumsAreRecordedWithTheirAlgorithmAndOldBareHexMeansSHA256() throws {
        let xxh = try Checksum(parsing: "xxh128:99AA06D3014798D86001C324468D497F")
        #expect(xxh.algorithm == .xxh128 && xxh.hex == "99aa06d3014798d86001c324468d497f")
        #expect(xxh.description == "xxh128:99aa06d3014798d86001c324468d497f")
        let sha = String(repeating: "ab", count: 32)
        #expect(try Checksum(parsing: "sha256:" + sha) == Checksum(parsing: sha))
        #expect(try Checksum(parsing: sha).description == "sha256:" + sha)
        for bad in ["", "xxh128:", "xxh128:" + sha, "sha256:99aa06d3014798d86001c324468d497f", "md5:" + sha, String(sha.dropLast()),
                    "xxh128:99aa06d3014798d86001c324468d497g", "sha256:" + sha + "\n"] {
            #expect(throws: Checksum.Invalid.self, "\(bad)") { try Checksum(parsing: bad) }
        }
        #expect(try ChecksumAlgorithm(parsing: "sha256", setting: "RELOCATOR_CHECKSUM") == .sha256)
        #expect { try ChecksumAlgorithm(parsing: "md5", setting: "RELOCATOR_CHECKSUM") } throws: {
            "\($0)" == "RELOCATOR_CHECKSUM: one of xxh128, sha256 (got 'md5')"
        }
    }

    /// Sizes around XXH3's internal boundaries (16, 128, 240 bytes, its 1 KiB stripes and 64 KiB
    /// blocks) and across the mover's chunks.
    @Test func fileChecksumsMatchXxhsumAndSha256sum() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let mover = FileMover(chunkSize: 4096)
        for size in [0, 1, 16, 17, 128, 129, 240, 241, 1024, 4095, 4096, 4097, 65_537, 1_000_003] {
            let path = root.path + "/f\(size)"
            let sha = try TestFiles.make(path, bytes: size)
            #expect(try mover.checksum(of: path, algorithm: .xxh128) == Checksum(algorithm: .xxh128, hex: TestFiles.xxh128(path)), "\(size) bytes")
            #expect(try mover.checksum(of: path, algorithm: .sha256) == Checksum(algorithm: .sha256, hex: sha), "\(size) bytes")
        }
        // Pieces of odd lengths that cross XXH3's stripes and blocks, hashed through the widest
        // vector unit the processor has (`relocator_xxh3_128bits_update`).
        let odd = FileMover(chunkSize: 1_000_003)
        for size in [2_999_999, 8_388_609] {
            let path = root.path + "/g\(size)"
            let sha = try TestFiles.make(path, bytes: size)
            #expect(try odd.checksum(of: path, algorithm: .xxh128) == Checksum(algorithm: .xxh128, hex: TestFiles.xxh128(path)), "\(size) bytes")
            #expect(try odd.checksum(of: path, algorithm: .sha256) == Checksum(algorithm: .sha256, hex: sha), "\(size) bytes")
        }
        #expect { try mover.checksum(of: root.path, algorithm: .xxh128) } throws: { ($0 as? MoveError)?.kind == .notRegularFile }
        #expect { try mover.checksum(of: root.path + "/none", algorithm: .xxh128) } throws: {
            ($0 as? MoveError)?.description.contains("ENOENT") == true
        }
    }

    @Test func temporaryFileNamesRoundTripAndNothingElseParses() throws {
        let part = PartName(cid: 7, gen: 1_700_000_000_123)
        #expect(part.fileName == "7-1700000000123.part")
        #expect(part.relativePath == ".relocator/tmp/7-1700000000123.part")
        #expect(PartName(parsing: part.fileName) == part)
        #expect(PartName(parsing: PartName(cid: Int64.max, gen: Int64.max).fileName) == PartName(cid: Int64.max, gen: Int64.max))
        for name in ["a.mp4", "7-1.parts", "7.part", "7-1-2.part", "-7-1.part", "x-1.part", "7-+1.part", "99999999999999999999-1.part",
                     ".a.relocator-7-1.part", "7-1.part.b", "d/7-1.part"] {
            #expect(PartName(parsing: name) == nil, "\(name)")
        }
    }

    @Test func earlierVersionsTemporaryFileNamesParseForReconcileOnly() throws {
        let part = try #require(LegacyPartName(parsing: ".a.b.mp4.relocator-7-1700000000123.part"))
        #expect(part == LegacyPartName(baseName: "a.b.mp4", cid: 7, gen: 1_700_000_000_123))
        // A base name that holds the marker itself: the last one counts.
        let tricky = LegacyPartName(baseName: "a.relocator-1-2.part", cid: 3, gen: 4)
        #expect(LegacyPartName(parsing: tricky.fileName) == tricky)
        for name in ["a.mp4", ".a.mp4", ".a.relocator-7-1.parts", ".relocator-7-1.part", "..relocator-7-1.part", ".a.relocator-7.part",
                     ".a.relocator-7-1-2.part", ".a.relocator--7-1.part", ".a.relocator-x-1.part", ".a.relocator-7-+1.part",
                     ".a.relocator-99999999999999999999-1.part", "d/.a.relocator-7-1.part", ".a.relocator-7-1.part.b"] {
            #expect(LegacyPartName(parsing: name) == nil, "\(name)")
        }
    }

    @Test func noContentMayLiveInTheReservedDirectory() throws {
        // In any case: on a filesystem that ignores case, `.Relocator/` is the same directory.
        for name in [".relocator/tmp/7-1.part", ".relocator/lock", ".relocator", ".Relocator/tmp/7-1.part", ".RELOCATOR", ".reLocator/x",
                     ".relocator./lock", ".Relocator . /x"] {
            #expect { try Filename(name) } throws: { "\($0)".contains(".relocator/") }
        }
        // Only the level's own reserved directory: a deeper one, or a look-alike, is a name like any other.
        for name in ["a/.relocator/x", ".relocator2/x", "relocator/x", ".notes.relocator-9-1.part"] {
            #expect(try Filename(name).value == name)
        }
    }
}
