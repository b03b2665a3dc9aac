import Foundation
import SwiftCSV

/// CSV as `contents import` and `enqueue --file` read it (RFC 4180 through SwiftCSV): quoted
/// fields may hold commas, quotes (`""`) and line breaks; an optional header line names the
/// columns (then in any order); blank lines and lines starting with `#` are skipped (a line of
/// empty fields is not blank: it is reported as bad). Every record
/// keeps the line it starts on, so a bad one is reported by its line number.
struct CSVInput {
    struct Record: Equatable {
        /// The line (from 1) the record starts on.
        var line: Int
        /// The fields in the order of `columns`: trimmed of surrounding spaces, but for a quoted
        /// field of the columns of `keepingSpaces`, which is as written between its quotes (a
        /// quoted filename keeps its spaces, an unquoted one loses them on both sides).
        var fields: [String]
    }

    /// A record as read, its fields in the order written.
    struct RawRecord {
        var line: Int
        var fields: [String]
        /// Whether each field was quoted (one more, a last empty field, at the very end of the text).
        var quoted: [Bool]
    }

    /// A line that cannot be used, and why.
    struct BadLine: Equatable, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    var records: [Record] = []
    var bad: [BadLine] = []
    /// True when the first line was a header.
    var hadHeader = false

    /// Reads `text` whose records have `columns` (`["cid", "filename", "level"]`). A first line
    /// without numbers that names one of the columns is the header; without one the fields are in
    /// the order given.
    init(_ text: String, columns: [String], keepingSpaces: Set<String> = []) {
        // (A last line without its line break ends as one with it: `,` there is two empty fields.)
        let raw = Self.rawRecords(text.last?.isNewline == false ? text + "\n" : text)
        bad = raw.bad
        var order = Array(columns.indices)
        var first = true
        for record in raw.records {
            let trimmed = record.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            if trimmed.allSatisfy(\.isEmpty) {
                // A blank line is skipped; a line of empty fields (`,`) is bad, and no header either.
                if trimmed.count > 1 {
                    bad.append(BadLine(line: record.line, reason: "\(trimmed.count) empty fields, expected \(columns.count) values (\(columns.joined(separator: ",")))"))
                }
                continue
            }
            if trimmed[0].hasPrefix("#") { continue }
            if first {
                first = false
                // A header: no field is a number and one at least names a column.
                let names = trimmed.map { $0.lowercased() }
                if names.allSatisfy({ Int64($0) == nil }) && names.contains(where: columns.contains) {
                    hadHeader = true
                    let unknown = names.filter { !columns.contains($0) }
                    let missing = columns.filter { !names.contains($0) }
                    if !unknown.isEmpty || !missing.isEmpty || Set(names).count != names.count {
                        bad.append(BadLine(line: record.line, reason: "the header names \(names.joined(separator: ",")); expected the columns \(columns.joined(separator: ",")) in any order"))
                        return
                    }
                    order = columns.map { names.firstIndex(of: $0)! }
                    continue
                }
            }
            guard trimmed.count == columns.count else {
                bad.append(BadLine(line: record.line, reason: "\(trimmed.count) field\(trimmed.count == 1 ? "" : "s"), expected \(columns.count) (\(columns.joined(separator: ",")))"))
                continue
            }
            let keep = columns.map { keepingSpaces.contains($0) }
            records.append(Record(line: record.line, fields: order.enumerated().map { column, index in
                keep[column] && record.quoted.indices.contains(index) && record.quoted[index] ? record.fields[index] : trimmed[index]
            }))
        }
        bad.sort { $0.line < $1.line }
    }

    /// Every record with its line; a malformed quote makes its line bad, and reading goes on at the
    /// next line.
    static func rawRecords(_ text: String) -> (records: [RawRecord], bad: [BadLine]) {
        var records: [RawRecord] = []
        var bad: [BadLine] = []
        var rest = Substring(text)
        var line = 1
        while !rest.isEmpty {
            var next = line
            let quoted = quotedFields(rest)
            var index = 0
            do {
                let csv = try CSV<Enumerated>(string: String(rest), delimiter: .comma, loadColumns: false, rowLimit: 0)
                try csv.enumerateAsArray(startAt: 0, rowLimit: nil) { fields in
                    records.append(RawRecord(line: next, fields: fields, quoted: index < quoted.count ? quoted[index] : []))
                    index += 1
                    // A quoted field may span lines: the next record starts after them.
                    next += 1 + fields.reduce(0) { $0 + $1.reduce(0) { $0 + ($1.isNewline ? 1 : 0) } }
                }
                break
            } catch {
                let reason: String
                switch error {
                case CSVParseError.quotation(let message), CSVParseError.generic(let message):
                    reason = "malformed quoting (\(message.prefix(60)))"
                default:
                    reason = "cannot be read as CSV (\(error))"
                }
                bad.append(BadLine(line: next, reason: reason))
                // Go on after the line the bad record starts on.
                var skipped = 0
                while skipped < next - line + 1, let end = rest.firstIndex(where: \.isNewline) {
                    rest = rest[rest.index(after: end)...]
                    skipped += 1
                }
                if skipped < next - line + 1 { rest = "" }
                line = next + 1
            }
        }
        return (records, bad)
    }

    /// Which fields of each record of `text` are quoted, record by record as SwiftCSV's parser
    /// splits them: a field is quoted when its first character but spaces is `"`; a quoted one
    /// ends at the quote that is not doubled, an unquoted one at the next comma or line break.
    /// Past a malformed quote its records are not used (SwiftCSV stops there, and reading goes on
    /// at the next line).
    static func quotedFields(_ text: Substring) -> [[Bool]] {
        var records: [[Bool]] = []
        var record: [Bool] = []
        var atStart = true   // before a field's first character but spaces
        var inQuotes = false  // in a quoted field, before its closing quote
        var quote = false     // a quote in a quoted field: its end, or the first of `""`
        for char in text {
            if atStart {
                if char == "," || char.isNewline {
                    record.append(false)  // an empty field
                    if char.isNewline {
                        records.append(record)
                        record = []
                    }
                } else if !char.isWhitespace {
                    record.append(char == "\"")
                    atStart = false
                    inQuotes = char == "\""
                    quote = false
                }
            } else if inQuotes && !quote {
                quote = char == "\""
            } else if inQuotes && char == "\"" {
                quote = false
            } else if char == "," {
                atStart = true
            } else if char.isNewline {
                records.append(record)
                record = []
                atStart = true
            }
        }
        if !record.isEmpty { records.append(record) }
        return records
    }
}

/// Reads a whole file, or standard input for `-`, naming the path and the system's reason when it
/// cannot (`cannot read /nonexistent.csv: No such file or directory`).
enum InputFile {
    static func read(_ path: String) throws -> String {
        let fd = path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CommandFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw CommandFailure("cannot read \(path): Is a directory")
        }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CommandFailure("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw CommandFailure("cannot read \(path): \(firstNotUTF8(data)) UTF-8 text")
        }
        return text
    }

    /// Where `data` first is not UTF-8: `line 3` (from 1).
    static func firstNotUTF8(_ data: [UInt8]) -> String {
        var line = 1
        for piece in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if String(validating: piece, as: UTF8.self) == nil { return "line \(line) is not" }
            line += 1
        }
        return "it is not"
    }
}

extension CSVInput {
    /// The bad lines in one line of text: the first ten and how many more.
    static func summary(_ bad: [BadLine]) -> String {
        let shown = bad.prefix(10).map(\.description).joined(separator: "; ")
        return bad.count > 10 ? "\(shown); and \(bad.count - 10) more" : shown
    }
}
