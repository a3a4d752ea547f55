// swift-tools-version: 6.1
// Short programs a library user copies from. Build from this folder: `swift build`.
import PackageDescription

let package = Package(
    name: "QuantKitExamples",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "QuantKit", path: "..")],
    targets: [
        .executableTarget(name: "QuantizeMatrix", dependencies: [
            .product(name: "QuantCore", package: "QuantKit"), .product(name: "GPTQ", package: "QuantKit"),
            .product(name: "AWQ", package: "QuantKit"), .product(name: "Packing", package: "QuantKit"),
            .product(name: "SafeTensors", package: "QuantKit"), .product(name: "QuantPipeline", package: "QuantKit"),
        ]),
        .executableTarget(name: "QuantizeModel", dependencies: [
            .product(name: "QuantCore", package: "QuantKit"), .product(name: "Packing", package: "QuantKit"),
            .product(name: "QuantPipeline", package: "QuantKit"),
        ]),
        .executableTarget(name: "ReadPackedCheckpoint", dependencies: [
            .product(name: "LanguageModel", package: "QuantKit"), .product(name: "Packing", package: "QuantKit"),
            .product(name: "SafeTensors", package: "QuantKit"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
