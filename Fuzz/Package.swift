// swift-tools-version: 6.1
// libFuzzer harnesses of QuantKit's parsers. Build and run with Fuzz/run.sh (it passes
// `--sanitize fuzzer` and `--sanitize address`); each harness is an executable whose entry
// point is libFuzzer's.
import PackageDescription

let harness: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "QuantKitFuzz",
    dependencies: [.package(name: "QuantKit", path: "..")],
    targets: [
        .executableTarget(name: "FuzzSafeTensors", dependencies: [.product(name: "QuantKit", package: "QuantKit")], swiftSettings: harness),
        .executableTarget(name: "FuzzModelConfig", dependencies: [.product(name: "QuantKit", package: "QuantKit")], swiftSettings: harness),
        .executableTarget(name: "FuzzTokenizer", dependencies: [.product(name: "QuantKit", package: "QuantKit")], swiftSettings: harness),
        .executableTarget(name: "FuzzQuantizationConfig", dependencies: [.product(name: "QuantKit", package: "QuantKit")], swiftSettings: harness),
    ],
    swiftLanguageModes: [.v6]
)
