// swift-tools-version:6.0
import PackageDescription

// Linux only: the mover uses openat2, /proc/self/fd and posix_fadvise; the clients link hiredis,
// libpq, libmariadb and libsqlite3 from Debian.
let package = Package(
    name: "relocator",
    products: [
        .executable(name: "relocator", targets: ["relocator"]),
        // The memory queue and what else tests of code above the queue need, as Hummingbird ships
        // HummingbirdTesting.
        .library(name: "RelocatorTesting", targets: ["RelocatorTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // TLS between workers (`--transfer-tls-*`): already in the graph through Hummingbird.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
    ],
    targets: [
        // System libraries: module maps only.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),

        // Levels, configuration, errors — no I/O.
        .target(name: "RelocatorCore"),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis", "RelocatorCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SQLStore",
            dependencies: [
                "CLibPQ", "CMariaDB", "CSQLite", "RelocatorCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            // Migrations/<dialect>/NNNN_name.<dialect>.sql, compiled into the binary
            // (PackageResources.<mangled file name>, listed in EmbeddedMigrations.swift).
            resources: [.embedInCode("Migrations")]
        ),
        .target(name: "JobQueue", dependencies: ["RedisClient", "RelocatorCore"], resources: [.embedInCode("Lua")]),
        .target(
            name: "FileMover",
            dependencies: [
                "RelocatorCore", "CXXHash",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "RelocatorAPI",
            dependencies: [
                "RelocatorCore", "RedisClient", "SQLStore", "JobQueue", "FileMover", "RelocatorServices", "RelocatorMetrics", "RelocatorApp",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The dashboard's templates and script, compiled into the binary.
            resources: [.embedInCode("Dashboard")]
        ),
        // The application: the use cases every front end calls, over a queue and a store protocol.
        .target(
            name: "RelocatorApp",
            dependencies: [
                "RelocatorCore", "FileMover",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Prometheus: the metrics factory, the queue gauges read at scrape time, and the small
        // metrics endpoint of workers and committers.
        .target(
            name: "RelocatorMetrics",
            dependencies: [
                "RelocatorCore", "RedisClient", "JobQueue", "RelocatorServices",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The long-lived services (worker, committer, reconciler) over a queue protocol.
        .target(
            name: "RelocatorServices",
            dependencies: [
                "RelocatorCore", "RelocatorApp", "RedisClient", "SQLStore", "JobQueue", "FileMover",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                // The transfer client's TLS (`TransferTLSStream`).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The worker's transfer endpoint: its levels' files served to other workers' transfers.
        .target(
            name: "RelocatorTransfer",
            dependencies: [
                "RelocatorCore", "FileMover",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Fault injection for tests (RELOCATOR_FAULTS), as decorators of the worker's queue and mover.
        .target(
            name: "RelocatorFaults",
            dependencies: ["RelocatorCore", "FileMover", .product(name: "Logging", package: "swift-log")]
        ),
        // The memory twin of the queue, for tests of the rules above it.
        .target(name: "RelocatorTesting", dependencies: ["RelocatorCore"]),
        .executableTarget(
            name: "relocator",
            dependencies: [
                // Neither RedisClient, SQLStore nor JobQueue: the commands reach Redis and SQL only through the
                // application and the composition root (RelocatorServices' Composition).
                "RelocatorCore", "FileMover", "RelocatorAPI", "RelocatorServices", "RelocatorMetrics", "RelocatorFaults",
                "RelocatorTransfer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftCSV", package: "SwiftCSV"),
            ]
        ),

        .testTarget(name: "RelocatorCoreTests", dependencies: ["RelocatorCore"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport"]),
        .testTarget(name: "JobQueueTests", dependencies: ["JobQueue", "TestSupport"]),
        .testTarget(name: "FileMoverTests", dependencies: ["FileMover", "TestSupport"]),
        .testTarget(name: "SQLStoreTests", dependencies: ["SQLStore", "TestSupport"]),
        // One contract, two queues: every life-cycle scenario on the Redis queue and the memory queue.
        .testTarget(name: "AppTests", dependencies: ["RelocatorApp", "RelocatorTesting"]),
        .testTarget(name: "QueueContractTests", dependencies: ["JobQueue", "RelocatorTesting", "TestSupport"]),
        .testTarget(
            name: "RelocatorServicesTests",
            dependencies: [
                "RelocatorServices", "RelocatorTesting", "RelocatorFaults", "JobQueue", "TestSupport",
                // A TLS peer of the tests' own (`TransferSocketTests`).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "RelocatorAPITests",
            dependencies: [
                "RelocatorAPI", "RelocatorApp", "RelocatorTesting", "RelocatorMetrics", "RelocatorServices", "FileMover", "TestSupport", "RouterTestSupport",
                "RedisClient",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The routes over real servers, where what Redis or the database does is the point (an outage,
        // maxmemory, Redis' paging, its extreme values, a schema behind, a real ext4's fill).
        .testTarget(
            name: "RelocatorAPIServerTests",
            dependencies: [
                "RelocatorAPI", "RelocatorApp", "RelocatorMetrics", "RelocatorServices", "FileMover", "TestSupport", "RouterTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "RelocatorTransferTests",
            dependencies: [
                "RelocatorTransfer", "RelocatorTesting", "FileMover", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        // Help/: the reference --help texts the tests compare with (read from the checkout).
        .testTarget(name: "CommandLineTests", dependencies: ["TestSupport", "relocator"], exclude: ["Help"]),
        .testTarget(name: "PipelineTests", dependencies: ["TestSupport", "RelocatorCore", "RedisClient", "SQLStore", "relocator"]),
        .target(name: "TestSupport", dependencies: ["RelocatorCore", "SQLStore"], path: "Tests/TestSupport"),
        // The route tests' requests and answers (over memory and over real servers).
        .target(name: "RouterTestSupport", dependencies: [.product(name: "HummingbirdTesting", package: "hummingbird")],
                path: "Tests/RouterTestSupport"),
    ]
)
