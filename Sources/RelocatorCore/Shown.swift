/// How text from outside — a filename, a level's name, a server's message — is shown to an
/// operator: as it is, but with control characters, the marks that reorder what follows
/// (bidirectional overrides, isolates and marks), the invisible ones (zero-width space, word
/// joiner, byte-order mark, soft hyphen), line and paragraph separators, and the backslash itself
/// as escapes (`\n`, `\u{1B}`, `\u{202E}`, `\\`). A name holding a newline or a terminal's escape
/// sequence then reads as what it is: never as two lines, a colour, or another name (`nl\nname`,
/// not `nl name`; and `nl\\nname` for one spelt with a backslash). The one rule for every line the
/// command line prints and every table cell.
public enum Shown {
    public static func text(_ text: some StringProtocol) -> String {
        escaped(text, backslash: true)
    }

    /// A message (an error, a warning, a finding), which may hold escapes of its own making (a
    /// byte that is not UTF-8 as `\xE9`, a name quoted with its escapes): as `text`, but its
    /// backslashes as they are.
    public static func message(_ text: some StringProtocol) -> String {
        escaped(text, backslash: false)
    }

    private static func escaped(_ text: some StringProtocol, backslash: Bool) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control || reorders(scalar.value) || hides(scalar.value) || (backslash && scalar == "\\") {
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

    /// U+00AD, U+200B, U+2028–U+2029, U+2060, U+FEFF: characters a terminal shows as nothing, or
    /// as a line break.
    static func hides(_ value: UInt32) -> Bool {
        value == 0x00AD || value == 0x200B || value == 0x2028 || value == 0x2029 || value == 0x2060 || value == 0xFEFF
    }
}
