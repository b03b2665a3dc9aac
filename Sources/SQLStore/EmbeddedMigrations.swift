/// The migration files compiled into the binary (`resources: [.embedInCode("Migrations")]` in
/// Package.swift): Sources/SQLStore/Migrations/<dialect>/NNNN_name.<dialect>.sql. SwiftPM names each
/// file's bytes after the file (`0001_original_tables.postgres.sql` → `_001_original_tables_postgres_sql`),
/// so the names must differ across dialects, hence the dialect in each name.
///
/// This is the one list of them: add a new file here too. SQLStoreTests fails when a file on disk
/// is missing from it or differs from what is compiled in.
extension Migration {
    public static let embeddedFiles: [SQLDialect: [(file: String, bytes: [UInt8])]] = [
        .postgres: [
            ("0001_original_tables.postgres.sql", PackageResources._001_original_tables_postgres_sql),
            ("0002_relocations.postgres.sql", PackageResources._002_relocations_postgres_sql),
            ("0003_unique_filenames.postgres.sql", PackageResources._003_unique_filenames_postgres_sql),
            ("0004_relocation_gen.postgres.sql", PackageResources._004_relocation_gen_postgres_sql),
            ("0005_level_policy.postgres.sql", PackageResources._005_level_policy_postgres_sql),
        ],
        .mysql: [
            ("0001_original_tables.mysql.sql", PackageResources._001_original_tables_mysql_sql),
            ("0002_relocations.mysql.sql", PackageResources._002_relocations_mysql_sql),
            ("0003_unique_filenames.mysql.sql", PackageResources._003_unique_filenames_mysql_sql),
            ("0004_relocation_gen.mysql.sql", PackageResources._004_relocation_gen_mysql_sql),
            ("0005_level_policy.mysql.sql", PackageResources._005_level_policy_mysql_sql),
        ],
        .sqlite: [
            ("0001_original_tables.sqlite.sql", PackageResources._001_original_tables_sqlite_sql),
            ("0002_relocations.sqlite.sql", PackageResources._002_relocations_sqlite_sql),
            ("0003_unique_filenames.sqlite.sql", PackageResources._003_unique_filenames_sqlite_sql),
            ("0004_relocation_gen.sqlite.sql", PackageResources._004_relocation_gen_sqlite_sql),
            ("0005_level_policy.sqlite.sql", PackageResources._005_level_policy_sqlite_sql),
        ],
    ]

    /// Every dialect's embedded migrations, parsed once. The files are part of the program and a
    /// test parses each, so a malformed one cannot reach a release.
    static let embeddedMigrations: [SQLDialect: [Migration]] = {
        var parsed: [SQLDialect: [Migration]] = [:]
        for (dialect, files) in embeddedFiles {
            do {
                parsed[dialect] = try parse(files: files.map { ($0.file, String(decoding: $0.bytes, as: UTF8.self)) })
            } catch {
                fatalError("the embedded \(dialect.rawValue) migrations are malformed: \(error)")
            }
        }
        return parsed
    }()
}
