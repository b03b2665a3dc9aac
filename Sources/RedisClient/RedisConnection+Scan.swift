extension RedisConnection {
    /// Every key name matching `pattern` (SCAN, 1,000 at a time). A pattern that holds a hash tag
    /// (`{relocator:3}job:*`) names keys of one slot.
    public func scan(match pattern: String) throws -> [String] {
        var cursor = "0"
        var names: [String] = []
        repeat {
            guard let reply = try send("SCAN", cursor, "MATCH", pattern, "COUNT", 1000).array, reply.count == 2,
                  let next = reply[0].string, let batch = reply[1].array
            else { throw RedisError(code: .protocolViolation, address: url.address, command: "SCAN", message: "unexpected reply to SCAN") }
            cursor = next
            names += batch.compactMap(\.string)
        } while cursor != "0"
        return names
    }
}
