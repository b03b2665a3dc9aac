import RedisClient
import RelocatorCore

/// The operators' lists one page at a time (`/v1/dead`, `/v1/retrying`, `/v1/deferred`, the
/// dashboard, `dlq list --limit`): only the page's job hashes are read, whatever the list holds.
extension JobQueue {
    /// A page of the dead letters of every shard, newest job first (`DeadLetterOrder`). Reads
    /// every id of the lists (a few bytes each) and the hashes of the page's jobs only.
    public func deadPage(_ request: PageRequest, on redis: RedisConnection) throws -> Page<DeadJob> {
        let shards = keys.shards
        let lists = try redis.pipeline(shards.map { RedisCommand("LRANGE", $0.dead, 0, -1) })
            .map { try $0.throwingServerError(address: redis.url.address, command: "LRANGE dead").array?.compactMap(\.string) ?? [] }
        // An id that is not a job id has no cid to find its shard by: remember where it was.
        var strays: [String: Int] = [:]
        for (index, ids) in lists.enumerated() where shards.count > 1 {
            for id in ids where JobID(id) == nil { strays[id] = index }
        }
        let page = DeadLetterOrder.page(lists.count == 1 ? lists[0] : lists.flatMap { $0 }, after: request.cursor, limit: request.limit)
        var byShard: [Int: [String]] = [:]
        for id in page.items { byShard[JobID(id).map { keys.shardIndex(of: $0.cid) } ?? strays[id] ?? 0, default: []].append(id) }
        var found: [String: DeadJob] = [:]
        for (index, ids) in byShard {
            for item in try withFields(ids, in: keys.shard(index), on: redis) {
                found[item.id] = DeadJob(id: item.id, shard: index, job: Job(hash: item.fields), fields: item.fields)
            }
        }
        return Page(items: page.items.compactMap { found[$0] }, total: page.total, next: page.next)
    }

    /// A page of the retrying or the deferred jobs of every shard, soonest due first
    /// (`ScheduleOrder`); a cursor that does not read as one starts from the first (the API
    /// refuses it before).
    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest, on redis: RedisConnection) throws -> Page<ScheduledJob> {
        let after = request.cursor.flatMap(ScheduleOrder.init(cursor:))
        var candidates: [(order: ScheduleOrder, shard: Int)] = []
        var total = 0
        for shard in keys.shards {
            let set = schedule == .retry ? shard.retry : shard.deferred
            total += try redis.send("ZCARD", set).int ?? 0
            // From the cursor's score on (one command: what others remove meanwhile cannot shift
            // it); members of that score up to the cursor's are skipped (Redis orders equal scores
            // by member, as ScheduleOrder does).
            let from = after.map { ScheduleOrder.scoreText($0.score) } ?? "-inf"
            var offset = 0, taken = 0
            while taken <= request.limit {
                let reply = try redis.send("ZRANGE", set, from, "+inf", "BYSCORE", "LIMIT", offset, request.limit + 1, "WITHSCORES")
                let items = try reply.throwingServerError(address: redis.url.address, command: "ZRANGE").array ?? []
                for pair in stride(from: 0, to: items.count - 1, by: 2) {
                    guard let member = items[pair].string, let score = items[pair + 1].string.flatMap(Double.init) else { continue }
                    let order = ScheduleOrder(score: score, member: member)
                    if let after, !(after < order) { continue }
                    candidates.append((order, shard.index))
                    taken += 1
                }
                offset += items.count / 2
                if items.count / 2 < request.limit + 1 { break }
            }
        }
        let chosen = candidates.sorted { $0.order < $1.order }.prefix(request.limit + 1)
        let page = Array(chosen.prefix(request.limit))
        var jobs: [String: Job] = [:]
        for (index, members) in Dictionary(grouping: page, by: \.shard) {
            for item in try withFields(members.map(\.order.member), in: keys.shard(index), on: redis) {
                if let job = Job(hash: item.fields), job.id == item.id { jobs[item.id] = job }
            }
        }
        return Page(items: page.map { ScheduledJob(id: $0.order.member, shard: $0.shard, due: Int64(clamping: $0.order.score),
                                                     job: jobs[$0.order.member]) },
                    total: total, next: chosen.count > request.limit ? page.last?.order.cursor : nil)
    }
}
