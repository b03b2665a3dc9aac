import Foundation
import RelocatorCore

/// Progress of a long command on standard error: on a terminal (`isatty(2)`) a bar redrawn in
/// place at most ten times a second; otherwise a plain line every `interval`, and one at the end
/// when the run was long or large (`ProgressText.plainLineDue`). The text itself comes from
/// `ProgressText`.
final class ProgressReporter {
    private var text: ProgressText
    private let terminal: Bool
    private let interval: Duration
    private let started = ContinuousClock.now
    private var lastDraw: ContinuousClock.Instant?
    private var done = 0
    /// What the last plain line showed.
    private var printedDone: Int?

    /// Off a terminal, runs of fewer items print a line only when they last longer than `interval`.
    private let largeAbove: Int

    init(label: String, total: Int?, unit: String, interval: Duration = .seconds(5), largeAbove: Int = 1000) {
        text = ProgressText(label: label, total: total, unit: unit)
        terminal = isatty(STDERR_FILENO) == 1
        self.interval = interval
        self.largeAbove = largeAbove
    }

    /// The total, once it is known.
    func setTotal(_ total: Int) {
        text.total = total
    }

    /// `done` items so far.
    func update(_ done: Int) {
        self.done = done
        let now = ContinuousClock.now
        let since = now - (lastDraw ?? started)
        if terminal {
            guard since >= .milliseconds(100) || done >= (text.total ?? Int.max) else { return }
            write("\r" + text.bar(done: done, elapsed: now - started, width: Self.width()) + "\u{1B}[K")
        } else {
            guard ProgressText.plainLineDue(done: done, total: text.total, sinceLastLine: since, interval: interval, largeAbove: largeAbove)
            else { return }
            write(text.line(done: done, elapsed: now - started) + "\n")
            printedDone = done
        }
        lastDraw = now
    }

    /// The last state, and the end of the bar's line.
    func finish() {
        let elapsed = ContinuousClock.now - started
        if terminal {
            write("\r" + text.bar(done: done, elapsed: elapsed, width: Self.width()) + "\u{1B}[K\n")
        } else if ProgressText.plainFinalLineDue(done: done, lastPrinted: printedDone, total: text.total, largeAbove: largeAbove) {
            write(text.line(done: done, elapsed: elapsed) + "\n")
        }
    }

    private func write(_ line: String) {
        StandardError.write(line)
    }

    /// The terminal's width: `COLUMNS`, else the window size, else 80.
    private static func width() -> Int {
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 { return columns }
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}
