/// How text from outside — a filename, a level's name, a server's message — is shown to an
/// operator: as it is, but with control characters and the marks that reorder what follows
/// (bidirectional overrides, isolates and marks) as escapes (`\n`, `\u{1B}`, `\u{202E}`). A name
/// holding a newline or a terminal's escape sequence then reads as what it is: never as two
/// lines, a colour, or another name (`nl\nname`, not `nl name`). The one rule for every line the
/// command line prints and every table cell.
public enum Shown {
    public static func text(_ text: some StringProtocol) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control || reorders(scalar.value) {
                result += scalar.escaped(asASCII: true)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069: marks that make a terminal show
    /// what follows in another order than it is written.
    static func reorders(_ value: UInt32) -> Bool {
        value == 0x061C || (0x200E...0x200F).contains(value) || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
    }
}
