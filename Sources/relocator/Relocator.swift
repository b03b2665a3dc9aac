import ArgumentParser

@main
struct Relocator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keeps content files on the right disk.",
        subcommands: [
            Serve.self, WorkerCommand.self, CommitterCommand.self, Migrate.self, Enqueue.self, Status.self, DLQ.self,
            Levels.self, Contents.self, Relocations.self, Reconcile.self, Checksum.self,
        ]
    )
}
