// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The library modules the executable and the tests build on.
let candorModules: [Target.Dependency] = ["Collector", "Retention", "Admin", "Actions", "Analytics", "Store", "Privacy", "Consent", "Geo", "JSONOutput", "Integrations", "Traffic", "Destinations", "TwoFactor", "Notify", "ReportRender", "Provisioning", "Imports", "Server", "Storage", "PostgresStore"]

let package = Package(
    name: "Candor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "candor", targets: ["Candor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/yaslab/CSV.swift.git", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CCompression", providers: [.apt(["zlib1g-dev", "libbrotli-dev"])]),
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(
            name: "Storage",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresStore",
            dependencies: ["CLibPQ", "Storage"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ReportRender",
            dependencies: ["CCairo"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Notify",
            dependencies: [
                "CCurl", "Store", "Storage", "Privacy", "JSONOutput",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TwoFactor",
            dependencies: ["CQREncode", "Privacy", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "JSONOutput",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Traffic",
            dependencies: ["CPCRE2", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Store",
            dependencies: ["Storage", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Privacy",
            dependencies: ["CSodium", "Store", "Storage", "Consent", "JSONOutput", .product(name: "CSV", package: "CSV.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Consent",
            dependencies: ["JSONOutput", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Geo",
            dependencies: ["CMaxMindDB", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Collector",
            dependencies: [
                "Store", "Storage", "Privacy", "Consent", "Geo", "JSONOutput", "Integrations", "Traffic", "CCompression",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Retention",
            dependencies: [
                "Store", "Storage", "Privacy", "Consent",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Integrations",
            dependencies: ["Storage", "Store", "Privacy", "JSONOutput", "Traffic", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "MultipartKit", package: "multipart-kit")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Destinations",
            dependencies: [
                "Store", "Storage", "Privacy", "Integrations", "JSONOutput",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Analytics",
            dependencies: ["Store"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Actions",
            dependencies: ["Storage", "Store", "Privacy", "Consent", "Integrations"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Imports",
            dependencies: ["Storage", "Store", "Privacy", "Traffic", .product(name: "CSV", package: "CSV.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Provisioning",
            dependencies: ["Storage", "Actions", "Store", "Privacy", "JSONOutput", .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Admin",
            dependencies: [
                "Store", "Privacy", "Consent", "Integrations", "JSONOutput", "Actions", "Analytics", "Destinations", "Geo", "TwoFactor", "Notify", "ReportRender",
                "Imports", "Traffic", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Server",
            dependencies: [
                "Collector", "Admin", "Actions", "Consent", "Destinations", "Geo", "Integrations", "JSONOutput", "Notify", "Privacy",
                "Provisioning", "Retention", "Store", "Storage", "Traffic",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Candor",
            dependencies: candorModules + [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CandorTests",
            dependencies: candorModules + [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Tests/CandorTests",
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
    ]
)
