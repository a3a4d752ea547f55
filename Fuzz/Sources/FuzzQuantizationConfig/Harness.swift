import QuantKit

/// Any bytes as a `quantization_config` object: parsing fails with a typed error or gives a
/// configuration that serializes back and parses to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let json = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))),
          let config = try? QuantizationConfig.parse(json) else { return 0 }
    guard let again = try? QuantizationConfig.parse(try JSONParser.parse(Array(config.json.serialized.utf8))) else {
        fatalError("a parsed quantization_config does not parse again after serialization: \(config.json.serialized)")
    }
    precondition(again.format == config.format && again.scheme == config.scheme, "round trip changed \(config.json.serialized)")
    return 0
}
