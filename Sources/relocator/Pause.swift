import ArgumentParser
import Foundation
import Logging
import RelocatorCore

extension Relocator {
    /// What `pause` and `resume` share: a level of the level table.
    struct LevelSwitch: ParsableArguments {
        @OptionGroup var runtime: RuntimeOptions
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "A level of the level table.") var level: String

        /// Pauses or resumes the level through the application (which checks the level table).
        func apply(paused: Bool) async throws {
            let service = try makeService(runtime, database, access: .readOnly,
                                          logger: Logger(label: "relocator.pause", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { service.close() }
            try await service.setPaused(paused, level: level)
        }
    }

    struct Pause: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop workers taking jobs from a level's queue (moves in flight finish).",
            discussion: """
                In force when the command returns: from then on no worker starts a move into the level, even one \
                already waiting on its queue. Jobs keep arriving on the queue; `relocator resume LEVEL` lets workers \
                take them again.
                """)
        @OptionGroup var logging: LogOptions
        @OptionGroup var target: LevelSwitch

        func run() async throws {
            let level = target.level
            try await target.apply(paused: true)
            print("paused \(level): workers take no job from its queue until `relocator resume \(level)`")
        }
    }

    struct Resume: AsyncParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(abstract: "Let workers take jobs from a paused level's queue again.")
        @OptionGroup var logging: LogOptions
        @OptionGroup var target: LevelSwitch

        func run() async throws {
            let level = target.level
            try await target.apply(paused: false)
            print("resumed \(level)")
        }
    }
}
