import RelocatorCore

/// How a heartbeat carries a disk report in Redis: `gold=used,free,size;silver=…` (bytes).
extension DiskReport {
    public var encoded: String {
        levels.keys.sorted().map { "\($0)=\(levels[$0]!.used),\(levels[$0]!.free),\(levels[$0]!.size)" }.joined(separator: ";")
    }

    public init(decoding text: String) {
        var levels: [String: Usage] = [:]
        for item in text.split(separator: ";") {
            let parts = item.split(separator: "=", maxSplits: 1)
            let numbers = parts.last?.split(separator: ",").compactMap { Int64($0) } ?? []
            if parts.count == 2, numbers.count == 3 { levels[String(parts[0])] = Usage(used: numbers[0], free: numbers[1], size: numbers[2]) }
        }
        self.init(levels: levels)
    }
}
