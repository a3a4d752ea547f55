import CQuantKit
import Foundation
import QuantKit

/// `qk_quantizer`: the options and the streamed statistics of one layer's input.
final class LayerQuantizer {
    let options: QuantizeOptions
    let columns: Int
    var accumulator: HessianAccumulator
    var hessian: Matrix<Double>? = nil
    /// Rows kept for the AWQ methods' search (they compare outputs on real tokens).
    var rows: [Float] = []

    init(options: QuantizeOptions, columns: Int) {
        self.options = options
        self.columns = columns
        accumulator = HessianAccumulator(columns: columns, name: "activations")
    }
}

/// `qk_layer`: a quantized layer and its options.
final class QuantizedLayer {
    let result: LayerQuantization.Result
    let options: QuantizeOptions
    init(_ result: LayerQuantization.Result, options: QuantizeOptions) {
        self.result = result
        self.options = options
    }
}

@_cdecl("qk_version")
public func qk_version() -> UnsafePointer<CChar>? { UnsafePointer(versionString) }
nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup(QuantKitVersion.string)

@_cdecl("qk_last_error")
public func qk_last_error() -> UnsafePointer<CChar>? {
    UnsafePointer((Thread.current.threadDictionary[ErrorMessage.key] as? ErrorMessage)?.text ?? ErrorMessage.empty)
}

@_cdecl("qk_options_init")
public func qk_options_init(_ out: UnsafeMutablePointer<qk_options>?, _ method: Int32) -> qk_status {
    guarded {
        let out = try require(out, "options")
        var c = cOptions(try QuantizeOptions(method: try QuantMethod(code: method)))
        c.format = -1  // recommended: follows bits and symmetry when the caller changes them
        out.pointee = c
    }
}

@_cdecl("qk_quantizer_create")
public func qk_quantizer_create(_ options: UnsafePointer<qk_options>?, _ inFeatures: Int64,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> qk_status {
    guarded {
        let out = try require(out, "out")
        guard inFeatures > 0 else { throw CInterfaceError("in_features must be positive, not \(inFeatures)") }
        configureOnce
        out.pointee = handle(LayerQuantizer(options: try quantizeOptions(options), columns: Int(inFeatures)))
    }
}

@_cdecl("qk_quantizer_add_activations")
public func qk_quantizer_add_activations(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ tokens: Int64) -> qk_status {
    guarded {
        let q = try object(h, as: LayerQuantizer.self, "quantizer")
        guard tokens >= 0 else { throw CInterfaceError("tokens must be ≥ 0, not \(tokens)") }
        guard q.hessian == nil else { throw CInterfaceError("the quantizer has a Hessian already: give activations or a Hessian, not both") }
        if tokens == 0 { return }
        let buffer = UnsafeBufferPointer(start: try require(x, "activations"), count: Int(tokens) * q.columns)
        try q.accumulator.add(rows: buffer, count: Int(tokens))
        if q.options.usesAWQ { q.rows.append(contentsOf: buffer) }
    }
}

@_cdecl("qk_quantizer_set_hessian")
public func qk_quantizer_set_hessian(_ h: OpaquePointer?, _ hessian: UnsafePointer<Double>?) -> qk_status {
    guarded {
        let q = try object(h, as: LayerQuantizer.self, "quantizer")
        guard q.accumulator.tokens == 0 else { throw CInterfaceError("the quantizer has activations already: give activations or a Hessian, not both") }
        let n = q.columns
        q.hessian = Matrix(rows: n, cols: n, storage: Array(UnsafeBufferPointer(start: try require(hessian, "hessian"), count: n * n)))
    }
}

@_cdecl("qk_quantizer_quantize")
public func qk_quantizer_quantize(_ h: OpaquePointer?, _ weight: UnsafePointer<Float>?, _ outFeatures: Int64,
                                  _ out: UnsafeMutablePointer<OpaquePointer?>?) -> qk_status {
    guarded {
        let q = try object(h, as: LayerQuantizer.self, "quantizer")
        let out = try require(out, "out")
        guard outFeatures > 0 else { throw CInterfaceError("out_features must be positive, not \(outFeatures)") }
        let w = Matrix(rows: Int(outFeatures), cols: q.columns,
                       storage: Array(UnsafeBufferPointer(start: try require(weight, "weight"), count: Int(outFeatures) * q.columns)))
        // The streamed Hessian (taken from a copy: the quantizer can quantize more layers of the same input).
        var acc = q.accumulator
        let hessian = q.hessian ?? (acc.tokens > 0 ? acc.takeHessian() : nil)
        let activations = q.rows.isEmpty ? nil : Matrix(rows: q.rows.count / q.columns, cols: q.columns, storage: q.rows)
        let r = try LayerQuantization.quantize(weight: w, activations: activations, hessian: hessian, options: q.options)
        out.pointee = handle(QuantizedLayer(r, options: q.options))
    }
}

@_cdecl("qk_quantizer_free")
public func qk_quantizer_free(_ h: OpaquePointer?) { release(h) }

@_cdecl("qk_layer_relative_error")
public func qk_layer_relative_error(_ h: OpaquePointer?) -> Double {
    (try? object(h, as: QuantizedLayer.self, "layer"))?.result.relativeError ?? .nan
}

@_cdecl("qk_layer_rtn_relative_error")
public func qk_layer_rtn_relative_error(_ h: OpaquePointer?) -> Double {
    (try? object(h, as: QuantizedLayer.self, "layer"))?.result.rtnRelativeError ?? .nan
}

/// Copies `values` into a caller's buffer of `count` floats, which must be exactly that size.
private func copy(_ values: [Float], to out: UnsafeMutablePointer<Float>?, count: Int64, _ what: String) throws {
    guard count == values.count else { throw CInterfaceError("\(what) has \(values.count) values but the buffer holds \(count)") }
    let out = try require(out, "out")
    values.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: values.count) }
}

@_cdecl("qk_layer_dequantized")
public func qk_layer_dequantized(_ h: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> qk_status {
    guarded {
        let l = try object(h, as: QuantizedLayer.self, "layer")
        try copy(l.result.effectiveWeight.storage, to: out, count: count, "the dequantized weight")
    }
}

@_cdecl("qk_layer_awq_scales")
public func qk_layer_awq_scales(_ h: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> qk_status {
    guarded {
        let l = try object(h, as: QuantizedLayer.self, "layer")
        guard let s = l.result.awqScales else { throw CInterfaceError("\(l.options.method.rawValue) has no AWQ scales") }
        try copy(s, to: out, count: count, "the AWQ scales")
    }
}

@_cdecl("qk_layer_format")
public func qk_layer_format(_ h: OpaquePointer?) -> Int32 {
    (try? object(h, as: QuantizedLayer.self, "layer"))?.options.format.code ?? -1
}

@_cdecl("qk_layer_options")
public func qk_layer_options(_ h: OpaquePointer?, _ out: UnsafeMutablePointer<qk_options>?) -> qk_status {
    guarded {
        let o = try object(h, as: QuantizedLayer.self, "layer").options
        let out = try require(out, "out")
        out.pointee = cOptions(o)
    }
}

@_cdecl("qk_layer_pack")
public func qk_layer_pack(_ h: OpaquePointer?, _ format: Int32, _ prefix: UnsafePointer<CChar>?,
                          _ out: UnsafeMutablePointer<OpaquePointer?>?) -> qk_status {
    guarded {
        let l = try object(h, as: QuantizedLayer.self, "layer")
        let out = try require(out, "out")
        let f = try PackFormat.from(code: format) ?? l.options.format
        try Packer.check(f, outFeatures: l.result.quantized.outFeatures, inFeatures: l.result.quantized.inFeatures,
                         scheme: l.options.scheme, trivialGroupIndex: l.result.quantized.hasTrivialGroupIndex)
        out.pointee = handle(TensorList(try Packer.pack(l.result.quantized, format: f, prefix: prefix.map { String(cString: $0) } ?? "")))
    }
}

@_cdecl("qk_layer_free")
public func qk_layer_free(_ h: OpaquePointer?) { release(h) }

@_cdecl("qk_pack")
public func qk_pack(_ codes: UnsafePointer<UInt8>?, _ scales: UnsafePointer<Float>?, _ zeros: UnsafePointer<UInt8>?,
                    _ gIdx: UnsafePointer<Int32>?, _ outFeatures: Int64, _ inFeatures: Int64, _ bits: Int32, _ groupSize: Int32,
                    _ symmetric: Int32, _ format: Int32, _ prefix: UnsafePointer<CChar>?,
                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> qk_status {
    guarded {
        let out = try require(out, "out")
        guard outFeatures > 0, inFeatures > 0 else { throw CInterfaceError("out_features and in_features must be positive") }
        guard let f = try PackFormat.from(code: format) else { throw CInterfaceError("qk_pack needs an explicit format") }
        guard let sym = try tristate(symmetric, "symmetric") else { throw CInterfaceError("qk_pack needs symmetric 1 or 0") }
        let scheme = try QuantScheme(bits: Int(bits), groupSize: Int(groupSize), symmetric: sym)
        let (o, n) = (Int(outFeatures), Int(inFeatures))
        let groups = scheme.groupCount(columns: n)
        let g = scheme.effectiveGroupSize(columns: n)
        let q = try QuantizedLinear(
            outFeatures: o, inFeatures: n, scheme: scheme,
            codes: Array(UnsafeBufferPointer(start: try require(codes, "codes"), count: o * n)),
            scales: Array(UnsafeBufferPointer(start: try require(scales, "scales"), count: groups * o)),
            zeros: zeros.map { Array(UnsafeBufferPointer(start: $0, count: groups * o)) }
                ?? [UInt8](repeating: UInt8(scheme.symmetricZero), count: groups * o),
            groupIndex: gIdx.map { Array(UnsafeBufferPointer(start: $0, count: n)) } ?? (0..<n).map { Int32($0 / g) })
        try Packer.check(f, outFeatures: o, inFeatures: n, scheme: scheme, trivialGroupIndex: q.hasTrivialGroupIndex)
        out.pointee = handle(TensorList(try Packer.pack(q, format: f, prefix: prefix.map { String(cString: $0) } ?? "")))
    }
}

@_cdecl("qk_unpack")
public func qk_unpack(_ tensors: UnsafePointer<qk_tensor>?, _ count: Int64, _ prefix: UnsafePointer<CChar>?, _ format: Int32,
                      _ bits: Int32, _ groupSize: Int32, _ symmetric: Int32, _ outFeatures: Int64, _ inFeatures: Int64,
                      _ dequantized: UnsafeMutablePointer<Float>?, _ codes: UnsafeMutablePointer<UInt8>?) -> qk_status {
    guarded {
        guard let f = try PackFormat.from(code: format) else { throw CInterfaceError("qk_unpack needs an explicit format") }
        guard let sym = try tristate(symmetric, "symmetric") else { throw CInterfaceError("qk_unpack needs symmetric 1 or 0") }
        let scheme = try QuantScheme(bits: Int(bits), groupSize: Int(groupSize), symmetric: sym)
        guard count >= 0 else { throw CInterfaceError("count \(count) is negative") }
        var byName: [String: Tensor] = [:]
        for i in 0..<Int(count) {
            let t = try tensor(from: try require(tensors, "tensors")[i], index: i)
            byName[t.name] = t
        }
        let q = try Packer.unpack(format: f, prefix: prefix.map { String(cString: $0) } ?? "", scheme: scheme) { byName[$0] }
        guard q.outFeatures == outFeatures && q.inFeatures == inFeatures else {
            throw CInterfaceError("the packed layer is [\(q.outFeatures) × \(q.inFeatures)], not [\(outFeatures) × \(inFeatures)]")
        }
        try copy(q.dequantized().storage, to: dequantized, count: outFeatures * inFeatures, "the dequantized weight")
        if let codes { q.codes.withUnsafeBufferPointer { codes.update(from: $0.baseAddress!, count: q.codes.count) } }
    }
}

@_cdecl("qk_quantize_model")
public func qk_quantize_model(_ model: UnsafePointer<CChar>?, _ calibration: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                              _ options: UnsafePointer<qk_options>?, _ progress: qk_progress_callback?,
                              _ userData: UnsafeMutableRawPointer?) -> qk_status {
    guarded {
        let o = try quantizeOptions(options)
        configureOnce
        // As the CLI does: without it every buffer above 32 MB is a fresh mmap, faulted in anew.
        ProcessTuning.retainFreedMemory()
        // No signal handlers are installed: the host program owns its signals (a Python caller
        // stops the run by returning nonzero from the callback).
        var stop = false
        _ = try QuantizationPipeline.run(
            modelDirectory: try string(model, "model_dir"), calibrationFile: calibration.map { String(cString: $0) },
            outputDirectory: try string(output, "output_dir"), options: o, quiet: true, resume: try require(options, "options").pointee.resume != 0,
            stopRequested: { stop ? "the progress callback" : Interruption.pending() },
            progress: { done, total, stage in
                guard let progress else { return }
                if stage.withCString({ progress(userData, Int32(done), Int32(total), $0) }) != 0 { stop = true }
            })
    }
}
