#if canImport(Glibc)
import Glibc
#endif
import Prometheus
import Synchronization

/// The standard process metrics every Prometheus client exports (the names of client_golang's
/// process collector), read from `/proc/self` when the registry is scraped:
/// `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`.
final class ProcessMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// The CPU seconds already added to the counter.
    private let counted = Mutex<Double>(0)

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private func gauge(_ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
    }

    /// Reads `/proc/self` and sets the metrics; leaves them as they were when it cannot.
    func update() {
        guard let stat = Self.read("/proc/self/stat"), let reading = Self.parse(stat: stat) else { return }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        let cpu = Double(reading.userTicks + reading.systemTicks) / ticks
        let growth = counted.withLock { counted -> Double in
            defer { counted = max(counted, cpu) }
            return cpu - counted
        }
        let cpuCounter = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "process_cpu_seconds_total", unitName: "", helpText: "Total user and system CPU time spent in seconds."))
        if growth > 0 { cpuCounter.increment(by: growth) }
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.").set(Double(reading.residentPages) * page)
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").set(Double(reading.virtualBytes))
        if let boot = Self.read("/proc/stat").flatMap(Self.bootTime) {
            gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.").set(Double(boot) + Double(reading.startTicks) / ticks)
        }
        if let open = Self.openDescriptors() { gauge("process_open_fds", "Number of open file descriptors.").set(Double(open)) }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            gauge("process_max_fds", "Maximum number of open file descriptors.").set(Double(limit.rlim_cur))
        }
    }

    struct Stat: Equatable {
        var userTicks: Int64
        var systemTicks: Int64
        var startTicks: Int64
        var virtualBytes: Int64
        var residentPages: Int64
    }

    /// The fields of `/proc/self/stat` it needs (proc(5): utime 14, stime 15, starttime 22, vsize 23,
    /// rss 24), read after the command name, which is in parentheses and may hold spaces.
    static func parse(stat text: String) -> Stat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state).
        func field(_ number: Int) -> Int64? { fields.count > number - 3 ? Int64(fields[number - 3]) : nil }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23), let resident = field(24) else { return nil }
        return Stat(userTicks: user, systemTicks: system, startTicks: start, virtualBytes: virtual, residentPages: resident)
    }

    /// `btime` of `/proc/stat`: when the machine booted, in seconds since 1970.
    static func bootTime(_ text: String) -> Int64? {
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Int64(line.dropFirst("btime ".count))
        }
        return nil
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Entries of `/proc/self/fd`, less the one listing it.
    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return max(0, count - 1)
    }
}
