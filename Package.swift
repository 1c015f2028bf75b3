// swift-tools-version:6.0
import PackageDescription

// Data flows one way: adapters → events → tracking → quality → stores → pipeline → API.
// A module never imports one downstream of it; only the executables (and MESApp, their
// assembly) know every module.
var targets: [Target] = [
    .systemLibrary(name: "CModbus", pkgConfig: "libmodbus",
                   providers: [.apt(["libmodbus-dev"])]),
    .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
    .systemLibrary(name: "CEpoll"),
    // OpenSSL (libssl, libcrypto): TLS for HTTPS, SHA-256 and random bytes for tokens.
    .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
    // libpq: the PostgreSQL store (`--db postgresql://…`, README "PostgreSQL").
    .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

    .target(name: "Runtime", dependencies: ["CEpoll"]),
    .target(name: "PlantModel", dependencies: ["Runtime"]),
    .target(name: "ModbusAdapter", dependencies: ["CModbus", "Runtime", "PlantModel"]),
    .target(name: "OPCUA", dependencies: ["COpenSSL", "Runtime"]),
    .target(name: "OPCUAAdapter", dependencies: ["OPCUA", "Runtime", "PlantModel"]),
    .target(name: "Tracking", dependencies: ["Runtime", "PlantModel"]),
    .target(name: "Quality", dependencies: ["COpenSSL", "Runtime", "PlantModel", "Tracking"]),
    .target(name: "Orders", dependencies: ["Runtime", "PlantModel"]),
    .target(name: "Storage", dependencies: ["CSQLite", "CLibPQ", "Runtime"]),
    .target(name: "PlantStore", dependencies: ["Runtime", "PlantModel", "Tracking", "Quality", "Orders", "Storage"]),
    // The data-flow spine: adapters' events → tracking and quality → storage; the API's ports.
    .target(name: "Pipeline", dependencies: ["Runtime", "PlantModel", "Tracking", "Quality", "Orders", "Storage", "PlantStore"]),
    // Notifications: the outbox, owner rules and delivery (wired to the pipeline by MESApp).
    .target(name: "Notify", dependencies: ["CEpoll", "COpenSSL", "Runtime", "PlantModel", "Storage"]),
    .target(name: "HTTP", dependencies: ["CEpoll", "COpenSSL", "Runtime"]),
    .target(name: "API", dependencies: ["Runtime", "PlantModel", "Tracking", "Quality", "Orders", "Storage", "Pipeline", "Notify", "HTTP"]),
    .target(name: "Simulation", dependencies: ["CModbus", "Runtime", "PlantModel", "OPCUA", "ModbusAdapter"]),
    .target(name: "MESApp", dependencies: [
        "Runtime", "PlantModel", "ModbusAdapter", "OPCUA", "OPCUAAdapter", "Tracking", "Quality", "Orders",
        "Storage", "PlantStore", "Pipeline", "Notify", "HTTP", "API", "Simulation",
    ]),
    .executableTarget(name: "mes-server", dependencies: ["MESApp"]),
    .executableTarget(name: "station-sim", dependencies: ["MESApp"]),

    // The benchmarks (`tools/bench`), outside the product: nothing in Sources/ depends on them.
    // CBench: C only the benchmarks use. BenchSupport: the percentile, client swarm and memory
    // sampler every benchmark shares. ComponentBenchmarks: one module measured on its own.
    .systemLibrary(name: "CBench", path: "Benchmarks/CBench"),
    .target(name: "BenchSupport", dependencies: ["CBench", "CEpoll", "COpenSSL", "Runtime"], path: "Benchmarks/BenchSupport"),
    .target(name: "ComponentBenchmarks", dependencies: [
        "BenchSupport", "CModbus", "Runtime", "PlantModel", "ModbusAdapter", "OPCUA", "Tracking", "Quality", "Storage", "PlantStore",
    ], path: "Benchmarks/ComponentBenchmarks"),
    .executableTarget(name: "mes-bench", dependencies: [
        "BenchSupport", "ComponentBenchmarks", "MESApp", "Runtime", "PlantModel", "ModbusAdapter", "OPCUA", "OPCUAAdapter",
        "HTTP", "Simulation", "Notify", "Storage",
    ], path: "Benchmarks/mes-bench"),

    // Helpers every test target shares (condition waits, temp folders, ports, peers, seeded RNG).
    .target(name: "TestSupport", dependencies: ["Runtime"], path: "Tests/TestSupport"),
    .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "TestSupport"]),
    .testTarget(name: "PlantModelTests", dependencies: ["PlantModel", "TestSupport"]),
    .testTarget(name: "HTTPTests", dependencies: ["HTTP", "BenchSupport", "TestSupport"]),
    .testTarget(name: "APITests", dependencies: ["API", "HTTP", "Pipeline", "PlantModel", "Quality", "Tracking", "Runtime", "TestSupport"]),
    .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
    .testTarget(name: "OPCUATests", dependencies: ["OPCUA", "COpenSSL", "TestSupport"]),
    .testTarget(name: "ModbusTests", dependencies: ["ModbusAdapter", "CModbus", "Simulation", "TestSupport"]),
    .testTarget(name: "TrackingTests", dependencies: ["Tracking", "PlantStore", "TestSupport"]),
    .testTarget(name: "QualityTests", dependencies: ["Quality", "PlantStore", "TestSupport"]),
    .testTarget(name: "SimulationTests", dependencies: ["Simulation", "MESApp", "TestSupport"]),
    .testTarget(name: "MESTests", dependencies: ["MESApp", "BenchSupport", "Notify", "Quality", "TestSupport"], exclude: ["golden"]),
    .testTarget(name: "OPCUAAdapterTests", dependencies: ["OPCUAAdapter", "OPCUA", "PlantModel", "TestSupport"]),
    .testTarget(name: "OrdersTests", dependencies: ["Orders", "PlantModel", "Runtime", "TestSupport"]),
    .testTarget(name: "BenchmarkTests", dependencies: [
        "BenchSupport", "ComponentBenchmarks", "Runtime", "PlantModel", "ModbusAdapter", "OPCUA", "Quality", "Storage", "Tracking",
        "PlantStore", "Simulation", "TestSupport",
    ]),
    .testTarget(name: "HardeningTests", dependencies: ["HTTP", "PlantModel", "Runtime", "MESApp", "TestSupport"]),
]

// Strict settings for every Swift target, from one loop.
for target in targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}

// Linux only: the HTTP module's event loop is epoll (CEpoll), so no Apple platform is claimed.
let package = Package(
    name: "LineMES",
    products: [
        .executable(name: "mes-server", targets: ["mes-server"]),
        .executable(name: "station-sim", targets: ["station-sim"]),
        .executable(name: "mes-bench", targets: ["mes-bench"]),
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)
