// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "QuantKit",
    platforms: [.macOS(.v14)],
    products: [
        // `import QuantKit` re-exports every module below.
        .library(name: "QuantKit", targets: ["QuantKit"]),
        // The C interface (header: Sources/CQuantKit/include/quantkit.h), also what the Python package loads.
        .library(name: "QuantKitC", type: .dynamic, targets: ["QuantKitC"]),
        .library(name: "QuantCore", targets: ["QuantCore"]),
        .library(name: "SafeTensors", targets: ["SafeTensors"]),
        .library(name: "Packing", targets: ["Packing"]),
        .library(name: "GPTQ", targets: ["GPTQ"]),
        .library(name: "AWQ", targets: ["AWQ"]),
        .library(name: "LanguageModel", targets: ["LanguageModel"]),
        .library(name: "QuantPipeline", targets: ["QuantPipeline"]),
        .executable(name: "quantkit", targets: ["quantkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (the DocC catalog is Sources/QuantKit/QuantKit.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CLinearAlgebra", path: "Sources/CLinearAlgebra"),
        .systemLibrary(name: "CAllocator", path: "Sources/CAllocator"),
        .target(name: "QuantCore", dependencies: ["CLinearAlgebra", "CAllocator"]),
        .target(name: "SafeTensors", dependencies: ["QuantCore"]),
        .target(name: "Packing", dependencies: ["QuantCore", "SafeTensors"]),
        .target(name: "GPTQ", dependencies: ["QuantCore"]),
        .target(name: "AWQ", dependencies: ["QuantCore"]),
        .target(name: "LanguageModel", dependencies: ["QuantCore", "SafeTensors", "Packing"]),
        .target(name: "QuantPipeline",
                dependencies: ["QuantCore", "SafeTensors", "Packing", "GPTQ", "AWQ", "LanguageModel"]),
        .target(name: "QuantKit",
                dependencies: ["QuantCore", "SafeTensors", "Packing", "GPTQ", "AWQ", "LanguageModel", "QuantPipeline"]),
        .target(name: "CQuantKit"),
        .target(name: "QuantKitC", dependencies: ["CQuantKit", "QuantKit"]),
        .executableTarget(
            name: "quantkit",
            dependencies: [
                "QuantPipeline", "QuantCore", "SafeTensors", "Packing", "GPTQ", "AWQ", "LanguageModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "CTestSupport", path: "Tests/CTestSupport", linkerSettings: [.linkedLibrary("openblas")]),
        .target(name: "TestSupport", dependencies: ["CTestSupport", "QuantCore", "SafeTensors"], path: "Tests/TestSupport"),
        .testTarget(name: "QuantKitTests", dependencies: ["QuantKit"]),
        .testTarget(name: "QuantCoreTests", dependencies: ["QuantCore", "TestSupport"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "QuantCore", "TestSupport"]),
        .testTarget(name: "PackingTests", dependencies: ["Packing", "QuantCore", "SafeTensors", "TestSupport"]),
        .testTarget(name: "GPTQTests", dependencies: ["GPTQ", "QuantCore", "TestSupport"]),
        .testTarget(name: "AWQTests", dependencies: ["AWQ", "QuantCore", "TestSupport"]),
        .testTarget(name: "QuantPipelineTests", dependencies: ["QuantPipeline", "LanguageModel", "Packing", "QuantCore", "SafeTensors", "TestSupport"]),
        .testTarget(name: "LanguageModelTests", dependencies: ["LanguageModel", "QuantCore", "SafeTensors", "Packing", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
