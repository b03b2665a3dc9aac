import ArgumentParser
import Foundation
import JobQueue
import RedisClient
import RelocatorCore

extension Relocator {
    /// What `pause` and `resume` share: a level of the level table, and the queue.
    struct LevelSwitch: ParsableArguments {
        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "A level of the level table.") var level: String

        /// Checks the level against the level table, then runs `body` on the queue.
        func apply(_ body: (JobQueue, RedisConnection) throws -> Void) throws {
            let db = try database.open(.readOnly)
            let names: [String]
            do {
                defer { db.close() }
                names = try Levels.names(db)
            }
            try Levels.requireKnown(level, in: names)
            let redis = RedisConnection(url: try runtime.redis(), replication: try runtime.replication())
            defer { redis.close() }
            let queue = JobQueue(keys: try runtime.keys())
            try redis.replicated { try body(queue, redis) }
        }
    }

    struct Pause: ParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop workers taking jobs from a level's queue (moves in flight finish).",
            discussion: """
                In force when the command returns: from then on no worker starts a move into the level, even one \
                already waiting on its queue. Jobs keep arriving on the queue; `relocator resume LEVEL` lets workers \
                take them again.
                """)
        @OptionGroup var logging: LogOptions
        @OptionGroup var target: LevelSwitch

        func run() throws {
            let level = target.level
            try target.apply { queue, redis in try queue.pause(level: level, on: redis) }
            print("paused \(level): workers take no job from its queue until `relocator resume \(level)`")
        }
    }

    struct Resume: ParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(abstract: "Let workers take jobs from a paused level's queue again.")
        @OptionGroup var logging: LogOptions
        @OptionGroup var target: LevelSwitch

        func run() throws {
            let level = target.level
            try target.apply { queue, redis in try queue.resume(level: level, on: redis) }
            print("resumed \(level)")
        }
    }
}
