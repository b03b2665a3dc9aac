extension Double {
    /// The number with a fixed number of decimals (no Foundation formatter).
    public func formatted(decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (self * scale).rounded() / scale
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let have = text.distance(from: dot, to: text.endIndex) - 1
            if have < decimals { text += String(repeating: "0", count: decimals - have) }
            if decimals == 0 { text = String(text[..<dot]) }
        }
        return text
    }
}

extension Double {
    /// A count as a whole number: `25000`, never `25000.0`. A decayed count (`812.7`) is rounded
    /// down, as placement compares it with whole `min_counts` (`812.7 < 813` and `812 < 813`).
    public var countText: String {
        guard isFinite, abs(self) < 9.2e18 else { return "\(self)" }
        return String(Int64(rounded(.down)))
    }
}
