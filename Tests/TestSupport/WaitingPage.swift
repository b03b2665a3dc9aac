/// Reading the dashboard's waiting page in tests.
public enum WaitingPage {
    /// The first "in 19 min 58 s" of a page, in seconds. (Tests use delays long enough for a test
    /// slowed down by a loaded machine to read the page before they pass.)
    public static func remaining(_ page: String) -> Int? {
        page.firstMatch(of: />in (?:(\d+) min )?(\d+) s</).flatMap { match in
            Int(match.2).map { seconds in (match.1.flatMap { Int($0) } ?? 0) * 60 + seconds }
        }
    }
}
