import QuantKit

/// Any bytes as a safetensors file: opening either fails with a `SafeTensorsError` or yields
/// tensors whose every element can be read (as Float for float types, as bytes otherwise).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafeTensorsFile(bytes: UnsafeRawBufferPointer(start: data, count: size), path: "fuzz.safetensors") else { return 0 }
    for t in file.tensors {
        if t.dtype.isFloatingPoint { _ = try? file.floats(t.name) } else { _ = try? file.tensor(t.name) }
        if t.shape.count == 2 && t.dtype.isFloatingPoint { _ = try? file.matrix(t.name) }
    }
    return 0
}
