import CQuantKit
import Foundation
import QuantKit

/// `qk_tensors`: tensors with C strings for names and dtypes, alive as long as the object.
final class TensorList {
    let tensors: [Tensor]
    private let names: [UnsafeMutablePointer<CChar>]
    private let dtypes: [UnsafeMutablePointer<CChar>]
    /// A copy of each tensor's bytes at an address that lives as long as this object.
    private let data: [UnsafeMutableRawPointer]

    init(_ tensors: [Tensor]) {
        self.tensors = tensors
        names = tensors.map { strdup($0.name) }
        dtypes = tensors.map { strdup($0.dtype.rawValue) }
        data = tensors.map { t in
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(t.bytes.count, 1), alignment: 16)
            t.bytes.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: $0.count) } }
            return p
        }
    }

    deinit {
        names.forEach { free($0) }
        dtypes.forEach { free($0) }
        data.forEach { $0.deallocate() }
    }

    /// A view of tensor `i`, valid while this object lives.
    func view(_ i: Int) -> qk_tensor {
        var v = qk_tensor()
        let t = tensors[i]
        v.name = UnsafePointer(names[i])
        v.dtype = UnsafePointer(dtypes[i])
        v.rank = Int32(t.shape.count)
        withUnsafeMutableBytes(of: &v.shape) { raw in
            let s = raw.bindMemory(to: Int64.self)
            for (k, d) in t.shape.prefix(8).enumerated() { s[k] = Int64(d) }
        }
        v.data = UnsafeRawPointer(data[i])
        v.byte_count = Int64(t.bytes.count)
        return v
    }
}

/// Copies a caller's `qk_tensor` into a Swift `Tensor`, checking name, dtype and size.
func tensor(from v: qk_tensor, index: Int) throws -> Tensor {
    let name = try string(v.name, "tensors[\(index)].name")
    let dtypeName = try string(v.dtype, "dtype of tensor '\(name)'")
    guard let dtype = DType(rawValue: dtypeName) else { throw CInterfaceError("tensor '\(name)': unknown dtype '\(dtypeName)'") }
    guard (0...8).contains(v.rank) else { throw CInterfaceError("tensor '\(name)': rank \(v.rank) is outside 0...8") }
    let shape = withUnsafeBytes(of: v.shape) { raw in Array(raw.bindMemory(to: Int64.self).prefix(Int(v.rank))).map(Int.init) }
    guard shape.allSatisfy({ $0 >= 0 }) else { throw CInterfaceError("tensor '\(name)': negative dimension in \(shape)") }
    let expected = shape.reduce(1, *) * dtype.size
    guard v.byte_count == expected else {
        throw CInterfaceError("tensor '\(name)': byte_count \(v.byte_count) but shape \(shape) of \(dtypeName) needs \(expected)")
    }
    guard expected == 0 || v.data != nil else { throw CInterfaceError("tensor '\(name)': data is NULL") }
    let bytes = expected == 0 ? [] : Array(UnsafeRawBufferPointer(start: v.data, count: expected))
    return Tensor(name: name, dtype: dtype, shape: shape, bytes: bytes)
}

@_cdecl("qk_tensors_count")
public func qk_tensors_count(_ h: OpaquePointer?) -> Int64 {
    guard let list = try? object(h, as: TensorList.self, "tensors") else { return 0 }
    return Int64(list.tensors.count)
}

@_cdecl("qk_tensors_get")
public func qk_tensors_get(_ h: OpaquePointer?, _ index: Int64, _ out: UnsafeMutablePointer<qk_tensor>?) -> qk_status {
    guarded {
        let list = try object(h, as: TensorList.self, "tensors")
        let out = try require(out, "out")
        guard index >= 0 && index < list.tensors.count else { throw CInterfaceError("index \(index) is outside 0..<\(list.tensors.count)") }
        out.pointee = list.view(Int(index))
    }
}

@_cdecl("qk_tensors_free")
public func qk_tensors_free(_ h: OpaquePointer?) { release(h) }

@_cdecl("qk_safetensors_read")
public func qk_safetensors_read(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> qk_status {
    guarded {
        let out = try require(out, "out")
        let file = try SafeTensorsFile(path: try string(path, "path"))
        out.pointee = handle(TensorList(try file.tensors.map { try file.tensor($0.name) }))
    }
}

@_cdecl("qk_safetensors_write")
public func qk_safetensors_write(_ path: UnsafePointer<CChar>?, _ tensors: UnsafePointer<qk_tensor>?, _ count: Int64) -> qk_status {
    guarded {
        let path = try string(path, "path")
        guard count >= 0 else { throw CInterfaceError("count \(count) is negative") }
        let list = count == 0 ? [] : try (0..<Int(count)).map { try tensor(from: try require(tensors, "tensors")[$0], index: $0) }
        try SafeTensorsWriter.write(list, to: path)
    }
}
