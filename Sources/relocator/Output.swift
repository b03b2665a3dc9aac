import Foundation
import RelocatorCore

/// Text tables for people: a header row, columns aligned with two spaces, no trailing spaces.
/// Cells hold no line breaks (control characters are escaped: `Shown`).
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) {
        self.header = header
    }

    mutating func add(_ cells: [String]) {
        rows.append(cells.map { Shown.text($0) })
    }

    var text: String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        return ([header] + rows).map { row in
            var line = ""
            for (index, cell) in row.enumerated() {
                if index == row.count - 1 {
                    line += cell
                } else {
                    line += cell + String(repeating: " ", count: widths[index] - cell.count + 2)
                }
            }
            return line
        }.joined(separator: "\n")
    }

    func print() {
        Swift.print(text)
    }
}

/// JSON for `--json`: keys sorted, snake_case (the types' own coding keys), no escaped slashes.
enum JSONOutput {
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func print(object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}

extension Optional where Wrapped: CustomStringConvertible {
    /// The value, or `-` in a table.
    var cell: String { map(\.description) ?? "-" }
}
