import RelocatorCore
import Testing

/// Text from outside is shown as it is, with what would hide or rearrange it escaped.
@Suite struct ShownTests {
    @Test(arguments: [
        ("g.mp4", "g.mp4"),
        ("two words ", "two words "),
        ("caf\u{E9}-cafe\u{301}.bin", "caf\u{E9}-cafe\u{301}.bin"),
        ("\u{1F3AC} film.mkv", "\u{1F3AC} film.mkv"),
        ("a\nb\rc\td", #"a\nb\rc\td"#),
        ("\u{1B}[31mred\u{7F}\u{0}", #"\u{1B}[31mred\u{7F}\0"#),
        ("\u{85}next", #"\u{0085}next"#),
        ("x\u{202E}gpj.exe", #"x\u{202E}gpj.exe"#),
        ("\u{2066}\u{2069}\u{200E}\u{200F}\u{61C}", #"\u{2066}\u{2069}\u{200E}\u{200F}\u{061C}"#),
        ("a\u{200B}b\u{2060}c\u{FEFF}d\u{AD}e\u{2028}f", #"a\u{200B}b\u{2060}c\u{FEFF}d\u{00AD}e\u{2028}f"#),
        (#"nl\nname"#, #"nl\\nname"#),
        ("\u{1F469}\u{200D}\u{1F4BB}", "\u{1F469}\u{200D}\u{1F4BB}"),
    ])
    func controlAndReorderingCharactersAreEscaped(text: String, shown: String) {
        #expect(Shown.text(text) == shown)
    }

    /// A message keeps the escapes it was made with; what would hide it is escaped as in a name.
    @Test func aMessageKeepsItsOwnBackslashes() {
        #expect(Shown.message(#"argument 6 is not UTF-8 ('caf\xE9.mp4')"#) == #"argument 6 is not UTF-8 ('caf\xE9.mp4')"#)
        #expect(Shown.message("a\nb\u{202E}") == #"a\nb\u{202E}"#)
    }
}
