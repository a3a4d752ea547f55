import QuantKit

/// Any bytes as a `tokenizer.json`: loading fails with `LanguageModelError` or gives a tokenizer
/// that encodes (and decodes) a mixed text without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let tokenizer = try? Tokenizer(data: Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    let ids = tokenizer.encode("Hello, world! 123 — ünïcödé\n\tdef f(x): return x**2  ")
    _ = tokenizer.decode(ids)
    return 0
}
