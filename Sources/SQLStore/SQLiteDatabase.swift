import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SQLite, the embedded default: one file, WAL journal, a busy timeout so that several processes
/// can share it.
public final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    public let location: String
    public let path: String
    public let access: DatabaseAccess
    /// True when this connection created the file (`.create` access and no file before).
    public let createdFile: Bool
    private var handle: OpaquePointer?

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    /// `SQLITE_READONLY_DIRECTORY` (a macro Swift does not import).
    private static let readOnlyDirectory = SQLITE_READONLY | (6 << 8)

    /// Opens the file at `path`.
    ///
    /// - `.readOnly`: `SQLITE_OPEN_READONLY`; nothing is written, not even the switch to WAL.
    /// - `.readWrite`: the file must exist; it is never created.
    /// - `.create`: a missing file is created (`relocator migrate`); `createdFile` says so.
    ///
    /// A missing file, a directory the user may not search, a read-only file or filesystem: each
    /// is one line naming the path and the errno (`EACCES`, `EROFS`, …).
    public init(path: String, access: DatabaseAccess = .readWrite, busyTimeoutMilliseconds: Int32 = 10_000) throws {
        self.path = path
        self.access = access
        location = "sqlite \(path)"
        let inMemory = path == ":memory:"
        var willCreate = false
        if !inMemory {
            switch Self.probe(path, writable: access != .readOnly) {
            case .exists:
                break
            case .missing where access == .create:
                // Made here rather than by SQLite, whose retries hide why a file cannot be created.
                // (An empty file is an empty database.)
                let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 {
                    Glibc.close(fd)
                    willCreate = true
                } else if errno != EEXIST {
                    throw Self.osError(errno, doing: "cannot create the database file", location: location)
                }
            case .missing:
                throw SQLError(code: .databaseFileMissing, location: location,
                               message: "no database file here; run `relocator migrate` to create it")
            case .failed(let code):
                throw Self.osError(code, doing: access == .readOnly ? "cannot open the database file for reading"
                                                                    : "cannot open the database file for writing",
                                   location: location)
            }
        }
        var flags = SQLITE_OPEN_NOMUTEX | (access == .readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE)
        if access == .create { flags |= SQLITE_OPEN_CREATE }
        // On a read-only filesystem nothing can change the file, and a WAL database could not be
        // read at all (its shared-memory file cannot be made there): open it as immutable.
        var name = path
        if !inMemory, access == .readOnly, Self.onReadOnlyFilesystem(path) {
            name = "file:" + Self.uriEscaped(path) + "?immutable=1"
            flags |= SQLITE_OPEN_URI
        }
        var db: OpaquePointer?
        let status = sqlite3_open_v2(name, &db, flags, nil)
        guard status == SQLITE_OK, let db else {
            let systemErrno = db.map { sqlite3_system_errno($0) } ?? 0
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            if willCreate { unlink(path) }
            if systemErrno != 0 {
                throw Self.osError(systemErrno, doing: "cannot open the database file", location: location)
            }
            throw SQLError(code: .unknownDatabase, location: location, message: "cannot open the database file: \(message)", serverCode: String(status))
        }
        handle = db
        createdFile = willCreate
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        do {
            // The journal mode is written into the file: only a connection that may write sets it.
            if !inMemory && access != .readOnly { try executeScript("PRAGMA journal_mode=WAL") }
            try executeScript("PRAGMA foreign_keys=ON")
        } catch {
            do { try removeCreatedFile() } catch let removal {
                throw SQLError(code: .other, location: location, message: "\(error); and then \(removal)")
            }
            close()
            throw error
        }
    }

    /// Removes the file this connection created (and its WAL and shared-memory files), after
    /// closing it: a `migrate` that failed leaves no half-made database behind. Does nothing when
    /// the file was there before.
    public func removeCreatedFile() throws {
        guard createdFile else { return }
        close()
        for file in [path, path + "-wal", path + "-shm", path + "-journal"] where unlink(file) != 0 && errno != ENOENT {
            throw Self.osError(errno, doing: "cannot remove \(file)", location: location)
        }
    }

    private enum Probe { case exists, missing, failed(Int32) }

    /// Tells a missing file from one the user may not read or write, without opening it: closing
    /// any descriptor of the file would drop every POSIX lock this process holds on it, and with
    /// them the locks of another SQLite connection here (the committer's, while the rebalancer opens
    /// its own). SQLite would then let a connection elsewhere delete the WAL in use.
    private static func probe(_ path: String, writable: Bool) -> Probe {
        var info = stat()
        guard stat(path, &info) == 0 else { return errno == ENOENT ? .missing : .failed(errno) }
        // A directory, a FIFO (SQLite's open would hang on it), a device: not a database file.
        if info.st_mode & S_IFMT != S_IFREG { return .failed(info.st_mode & S_IFMT == S_IFDIR ? EISDIR : EINVAL) }
        guard faccessat(AT_FDCWD, path, writable ? R_OK | W_OK : R_OK, AT_EACCESS) == 0 else { return .failed(errno) }
        return .exists
    }

    private static func onReadOnlyFilesystem(_ path: String) -> Bool {
        var info = statvfs()
        return statvfs(path, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0
    }

    /// A path as the path of a `file:` URI.
    private static func uriEscaped(_ path: String) -> String {
        var escaped = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                escaped.append(Character(UnicodeScalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                escaped += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return escaped
    }

    /// `cannot open the database file for writing: Permission denied (EACCES)`.
    static func osError(_ code: Int32, doing what: String, location: String) -> SQLError {
        let kind: SQLError.Code
        switch code {
        case EACCES, EPERM, EROFS: kind = .permissionDenied
        case ENOENT, ENOTDIR: kind = .databaseFileMissing
        default: kind = .unknownDatabase
        }
        return SQLError(code: kind, location: location, message: "\(what): \(describeErrno(code))")
    }

    deinit { close() }

    public func close() {
        if let db = handle {
            sqlite3_close_v2(db)
            handle = nil
        }
    }

    @discardableResult
    public func execute(_ query: SQLQuery) throws -> Int {
        let db = try open()
        _ = try run(query, db: db)
        return Int(sqlite3_changes(db))
    }

    public func query(_ query: SQLQuery) throws -> [SQLRow] {
        try run(query, db: open())
    }

    public func executeScript(_ sql: String) throws {
        let db = try open()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if status != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw error(status: status, message: message)
        }
    }

    // MARK: - sqlite3

    private func open() throws -> OpaquePointer {
        guard let db = handle else {
            throw SQLError(code: .connectionLost, location: location, message: "the database is closed")
        }
        return db
    }

    private func run(_ query: SQLQuery, db: OpaquePointer) throws -> [SQLRow] {
        let (sql, binds) = query.render(for: dialect)
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else {
            throw error(status: prepared, message: String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .int(let v): status = sqlite3_bind_int64(statement, index, v)
            case .double(let v): status = sqlite3_bind_double(statement, index, v)
            case .text(let v):
                // With its byte length: a NUL inside the text must not end it.
                let bytes = Array(v.utf8) + [0]
                status = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) {
                        sqlite3_bind_text(statement, index, $0.baseAddress, Int32(bytes.count - 1), Self.transient)
                    }
                }
            }
            if status != SQLITE_OK { throw error(status: status, message: String(cString: sqlite3_errmsg(db))) }
        }
        let columnCount = Int(sqlite3_column_count(statement))
        let columns = (0..<columnCount).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
        var rows: [SQLRow] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw error(status: step, message: String(cString: sqlite3_errmsg(db))) }
            var values: [SQLValue] = []
            values.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: values.append(.null)
                default:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let text = sqlite3_column_text(statement, column).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
                    } ?? ""
                    values.append(.text(text))
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    private func error(status: Int32, message: String) -> SQLError {
        let primary = status & 0xff
        if status == Self.readOnlyDirectory {
            let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            return SQLError(code: .permissionDenied, location: location,
                            message: "cannot read the database: its shared-memory file \(path)-shm is not there and this user may not create it in \(directory.isEmpty ? "." : directory) (EACCES); a database in WAL mode needs one",
                            serverCode: String(status))
        }
        if primary == SQLITE_ERROR, message.hasPrefix("no such table: ") {
            let name = message.dropFirst("no such table: ".count)
            return SQLError.schemaMissing(table: String(name.split(separator: ".").last ?? name), location: location, serverCode: String(status))
        }
        let code: SQLError.Code
        switch primary {
        case SQLITE_CONSTRAINT: code = .constraintViolation
        case SQLITE_ERROR: code = .badSQL
        case SQLITE_CANTOPEN, SQLITE_NOTADB: code = .unknownDatabase
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH: code = .permissionDenied
        default: code = .other
        }
        // A failure of the file system (a journal that cannot be created, a disk that is full)
        // names the errno the operating system gave.
        var text = message
        if [SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_PERM].contains(primary), let db = handle {
            let systemErrno = sqlite3_system_errno(db)
            if systemErrno != 0 {
                text += ": \(describeErrno(systemErrno))"
                if [EACCES, EPERM, EROFS].contains(systemErrno) {
                    return SQLError(code: .permissionDenied, location: location, message: text, serverCode: String(status))
                }
            }
        }
        return SQLError(code: code, location: location, message: text, serverCode: String(status))
    }
}

/// `Permission denied (EACCES)`: the system's words and the errno's name, which operators search for.
func describeErrno(_ code: Int32) -> String {
    let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST",
        ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE",
        ENOSPC: "ENOSPC", EROFS: "EROFS", ELOOP: "ELOOP", ENAMETOOLONG: "ENAMETOOLONG", EDQUOT: "EDQUOT",
        EAGAIN: "EAGAIN", ENXIO: "ENXIO",
    ]
    return "\(String(cString: strerror(code))) (\(names[code] ?? "errno \(code)"))"
}
