/// What long commands (`enqueue --file`, `reconcile`, `dlq replay --all`) show while they work:
/// on a terminal a bar redrawn in place, otherwise a plain line now and then. Pure: the caller
/// gives the counts and the elapsed time, and writes the text.
public struct ProgressText: Sendable {
    /// What is being counted (`enqueue`, `reconcile`).
    public var label: String
    /// How many items in all; nil when unknown.
    public var total: Int?
    /// The unit after the numbers (`counts`, `contents`, `jobs`).
    public var unit: String

    public init(label: String, total: Int?, unit: String) {
        self.label = label
        self.total = total
        self.unit = unit
    }

    /// Items per second, nil before any time has passed.
    public static func rate(done: Int, elapsed: Duration) -> Double? {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard seconds > 0 else { return nil }
        return Double(done) / seconds
    }

    /// Seconds left at the rate so far; nil when unknown (no total, nothing done yet).
    public static func eta(done: Int, total: Int?, elapsed: Duration) -> Int64? {
        guard let total, done > 0, let rate = rate(done: done, elapsed: elapsed), rate > 0 else { return nil }
        return Int64((Double(max(0, total - done)) / rate).rounded(.up))
    }

    private func numbers(done: Int, elapsed: Duration) -> [String] {
        var parts: [String] = []
        if let total {
            let percent = total == 0 ? 100 : min(100, done * 100 / total)
            parts.append("\(done)/\(total) \(unit) (\(percent)%)")
        } else {
            parts.append("\(done) \(unit)")
        }
        if let rate = Self.rate(done: done, elapsed: elapsed) {
            parts.append("\(rate.formatted(decimals: rate < 10 ? 1 : 0))/s")
        }
        if let eta = Self.eta(done: done, total: total, elapsed: elapsed), done < (total ?? 0) {
            parts.append("ETA \(OperatorValues.formatDuration(seconds: eta))")
        }
        return parts
    }

    /// The bar for a terminal `width` columns wide (without the leading carriage return):
    /// `enqueue [########------------]  120/500 counts (24%)  35/s  ETA 11s`.
    public func bar(done: Int, elapsed: Duration, width: Int) -> String {
        let text = numbers(done: done, elapsed: elapsed).joined(separator: "  ")
        let room = width - label.count - text.count - 5
        guard let total, room >= 10 else { return String("\(label) \(text)".prefix(max(0, width - 1))) }
        let barWidth = min(40, room)
        let filled = total == 0 ? barWidth : min(barWidth, done * barWidth / max(1, total))
        return "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: barWidth - filled))]  \(text)"
    }

    /// A plain line for a log or a pipe: `enqueue: 120/500 counts (24%), 35/s, ETA 11s`.
    public func line(done: Int, elapsed: Duration) -> String {
        "\(label): " + numbers(done: done, elapsed: elapsed).joined(separator: ", ")
    }

    /// When a plain line is due: once per `interval`; and when everything is done, if the run is
    /// large (`total` at least `largeAbove`) — a short run off a terminal stays quiet.
    public static func plainLineDue(done: Int, total: Int?, sinceLastLine: Duration, interval: Duration, largeAbove: Int = 0) -> Bool {
        if let total, total >= largeAbove, done >= total { return true }
        return sinceLastLine >= interval
    }

    /// Whether the last state gets a plain line at the end: when it was not printed yet and the
    /// run was long (a line before it) or large.
    public static func plainFinalLineDue(done: Int, lastPrinted: Int?, total: Int?, largeAbove: Int = 0) -> Bool {
        guard lastPrinted != done else { return false }
        return lastPrinted != nil || (total ?? 0) >= largeAbove
    }
}
