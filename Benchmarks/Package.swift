// swift-tools-version: 6.1
// Benchmarks live in their own package (depending on QuantKit by path) so that plain
// `swift build` / `swift test` of QuantKit never build them. Run from this folder:
//   swift run -c release quantkit-bench all
import PackageDescription

let package = Package(
    name: "QuantKitBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "QuantKit", path: "..")],
    targets: [
        .executableTarget(
            name: "quantkit-bench",
            dependencies: [
                .product(name: "QuantCore", package: "QuantKit"),
                .product(name: "GPTQ", package: "QuantKit"),
                .product(name: "AWQ", package: "QuantKit"),
                .product(name: "LanguageModel", package: "QuantKit"),
                .product(name: "QuantPipeline", package: "QuantKit"),
            ],
            path: "Sources/QuantKitBenchmarks"),
    ],
    swiftLanguageModes: [.v6]
)
