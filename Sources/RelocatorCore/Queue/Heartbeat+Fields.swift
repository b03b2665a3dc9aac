/// How a heartbeat carries a disk report in the queue (the `disks` field of a worker's hash):
/// `gold=used,free,size;silver=…` (bytes).
extension DiskReport {
    public var encoded: String {
        levels.keys.sorted().map { "\($0)=\(levels[$0]!.used),\(levels[$0]!.free),\(levels[$0]!.size)" }.joined(separator: ";")
    }

    /// Each level's filesystem (`level=device;…`), in a field of its own so that a reader of the
    /// `disks` field's three numbers reads it as before; nil when none is known.
    public var encodedFilesystems: String? {
        let known = levels.keys.sorted().compactMap { level in levels[level]!.filesystem.map { "\(level)=\($0)" } }
        return known.isEmpty ? nil : known.joined(separator: ";")
    }

    public init(decoding text: String, filesystems: String? = nil) {
        var devices: [String: UInt64] = [:]
        for item in (filesystems ?? "").split(separator: ";") {
            let parts = item.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let device = UInt64(parts[1]) { devices[String(parts[0])] = device }
        }
        var levels: [String: Usage] = [:]
        for item in text.split(separator: ";") {
            let parts = item.split(separator: "=", maxSplits: 1)
            let numbers = parts.last?.split(separator: ",").compactMap { Int64($0) } ?? []
            if parts.count == 2, numbers.count == 3 {
                levels[String(parts[0])] = Usage(used: numbers[0], free: numbers[1], size: numbers[2], filesystem: devices[String(parts[0])])
            }
        }
        self.init(levels: levels)
    }
}

/// How a heartbeat is kept in the queue: the `worker:<id>` hash (`WorkerField`), as `status`, the
/// dashboard and the metrics read it from either queue.
extension Heartbeat {
    public var fields: [WorkerField: String] {
        var info: [WorkerField: String] = [.kind: kind.rawValue, .levels: levels.joined(separator: ",")]
        info[.host] = host
        info[.pid] = pid.map(String.init)
        info[.concurrency] = concurrency.map(String.init)
        info[.held] = held.map(String.init)
        info[.startedAt] = startedAt.map(String.init)
        info[.disks] = disks?.encoded
        info[.filesystems] = disks?.encodedFilesystems
        if !directories.isEmpty { info[.directories] = directories.keys.sorted().map { "\($0)=\(directories[$0]!)" }.joined(separator: ",") }
        if !unavailable.isEmpty { info[.unavailable] = unavailable.joined(separator: ",") }
        info[.metricsPort] = metricsPort.map(String.init)
        info[.transfer] = transfer
        if transfer != nil && transferTLS { info[.transferTLS] = WorkerField.transferTLSOn }
        return info
    }

    public init(id: String, fields: [WorkerField: String]) {
        func list(_ field: WorkerField) -> [String] { (fields[field] ?? "").split(separator: ",").map(String.init) }
        var directories: [String: String] = [:]
        for item in list(.directories) {
            let parts = item.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { directories[String(parts[0])] = String(parts[1]) }
        }
        self.init(id: id, kind: fields[.kind].flatMap(Kind.init(rawValue:)) ?? .worker, host: fields[.host], pid: fields[.pid].flatMap { Int($0) },
                  levels: list(.levels), concurrency: fields[.concurrency].flatMap { Int($0) }, held: fields[.held].flatMap { Int($0) },
                  startedAt: fields[.startedAt].flatMap { Int64($0) }, beatAt: fields[.beatAt].flatMap { Int64($0) },
                  disks: fields[.disks].map { DiskReport(decoding: $0, filesystems: fields[.filesystems]) }, directories: directories, unavailable: list(.unavailable),
                  metricsPort: fields[.metricsPort].flatMap { Int($0) }, transfer: fields[.transfer].flatMap { $0.isEmpty ? nil : $0 },
                  transferTLS: fields[.transferTLS] == WorkerField.transferTLSOn)
    }
}
