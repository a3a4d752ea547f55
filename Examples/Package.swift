// swift-tools-version: 6.1
// Short programs a library user copies from. Build from this folder: `swift build`.
import PackageDescription

let package = Package(
    name: "QuantKitExamples",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "QuantKit", path: "..")],
    targets: [
        .executableTarget(name: "QuantizeMatrix", dependencies: [.product(name: "QuantKit", package: "QuantKit")]),
        .executableTarget(name: "QuantizeModel", dependencies: [.product(name: "QuantKit", package: "QuantKit")]),
        .executableTarget(name: "ReadPackedCheckpoint", dependencies: [.product(name: "QuantKit", package: "QuantKit")]),
    ],
    swiftLanguageModes: [.v6]
)
