import Foundation
import RelocatorCore

/// Fills a private Redis up to a real, small `maxmemory` (under `noeviction`), so that it refuses
/// writes as a full production Redis does, and lets it go again.
public enum RedisMemory {
    /// Sets `maxmemory` a little above what the server uses now, then writes filler keys (outside
    /// any test prefix) until the server answers `OOM`. Returns how many it wrote.
    @discardableResult
    public static func fill(port: Int, password: String? = nil, headroom: Int = 256 * 1024) throws -> Int {
        let info = RedisProcesses.fields(try RedisProcesses.cli(port: port, password: password, ["INFO", "memory"]))
        guard let used = info["used_memory"].flatMap(Int.init) else { throw ClusterError("INFO memory has no used_memory: \(info)") }
        _ = try RedisProcesses.cli(port: port, password: password, ["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        _ = try RedisProcesses.cli(port: port, password: password, ["CONFIG", "SET", "maxmemory", String(used + headroom)])
        let value = String(repeating: "x", count: 16 * 1024)
        for index in 0..<10_000 {
            let reply = try RedisProcesses.reply(port: port, password: password, ["SET", "filler:\(index)", value])
            guard reply.hasPrefix("OOM") else { continue }
            // Full. A client that leaves frees its buffers and takes the server back under the limit
            // for a moment: the limit goes a little below what the data takes, so it stays full.
            let now = RedisProcesses.fields(try RedisProcesses.cli(port: port, password: password, ["INFO", "memory"]))
            let data = now["used_memory"].flatMap(Int.init) ?? used + headroom
            _ = try RedisProcesses.cli(port: port, password: password, ["CONFIG", "SET", "maxmemory", String(max(1, data - headroom / 2))])
            return index
        }
        throw ClusterError("Redis never refused a write under maxmemory \(used + headroom)")
    }

    /// No limit again.
    public static func release(port: Int, password: String? = nil) throws {
        _ = try RedisProcesses.cli(port: port, password: password, ["CONFIG", "SET", "maxmemory", "0"])
    }
}
