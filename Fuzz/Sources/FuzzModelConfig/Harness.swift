import QuantKit

/// Any bytes as a `config.json`: parsing fails with a typed error or gives a configuration
/// whose derived values (RoPE tables for a short length, the memory estimate) can be computed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let json = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))),
          let config = try? ModelConfig.parse(json, file: "config.json") else { return 0 }
    _ = MemoryEstimate(config: config, tokens: 4096)
    if config.headDimension <= 4096 { _ = RopeTables(config: config, length: 8) }
    return 0
}
