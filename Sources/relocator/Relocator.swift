import ArgumentParser

@main
struct Relocator: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keeps content files on the right disk.",
        subcommands: [Migrate.self, Levels.self]
    )
}
