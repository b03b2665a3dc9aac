import Foundation
import RelocatorCore
import Synchronization

/// Progress of a long command on standard error: on a terminal (`isatty(2)`) a bar redrawn in
/// place at most ten times a second; otherwise a plain line every `interval`, and one at the end
/// when the run was long or large (`ProgressText.plainLineDue`). The text itself comes from
/// `ProgressText`. A run on a blocking thread may report through it.
final class ProgressReporter: Sendable {
    private struct State {
        var text: ProgressText
        var lastDraw: ContinuousClock.Instant?
        var done = 0
        /// What the last plain line showed.
        var printedDone: Int?
    }

    private let state: Mutex<State>
    private let terminal: Bool
    private let interval: Duration
    private let started = ContinuousClock.now

    /// Off a terminal, runs of fewer items print a line only when they last longer than `interval`.
    private let largeAbove: Int

    init(label: String, total: Int?, unit: String, interval: Duration = .seconds(5), largeAbove: Int = 1000) {
        state = Mutex(State(text: ProgressText(label: label, total: total, unit: unit)))
        terminal = isatty(STDERR_FILENO) == 1
        self.interval = interval
        self.largeAbove = largeAbove
    }

    /// The total, once it is known.
    func setTotal(_ total: Int) {
        state.withLock { $0.text.total = total }
    }

    /// `done` items so far.
    func update(_ done: Int) {
        state.withLock { state in
            state.done = done
            let now = ContinuousClock.now
            let since = now - (state.lastDraw ?? started)
            if terminal {
                guard since >= .milliseconds(100) || done >= (state.text.total ?? Int.max) else { return }
                write("\r" + state.text.bar(done: done, elapsed: now - started, width: Self.width()) + "\u{1B}[K")
            } else {
                guard ProgressText.plainLineDue(done: done, total: state.text.total, sinceLastLine: since, interval: interval, largeAbove: largeAbove)
                else { return }
                write(state.text.line(done: done, elapsed: now - started) + "\n")
                state.printedDone = done
            }
            state.lastDraw = now
        }
    }

    /// The last state, and the end of the bar's line.
    func finish() {
        let elapsed = ContinuousClock.now - started
        state.withLock { state in
            if terminal {
                write("\r" + state.text.bar(done: state.done, elapsed: elapsed, width: Self.width()) + "\u{1B}[K\n")
            } else if ProgressText.plainFinalLineDue(done: state.done, lastPrinted: state.printedDone, total: state.text.total, largeAbove: largeAbove) {
                write(state.text.line(done: state.done, elapsed: elapsed) + "\n")
            }
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
