import CQuantKit
import Foundation
import QuantKit

// Plumbing of the C interface: error codes and messages, option conversion, handles.

/// The message of the last failure on the calling thread, owned by the thread's dictionary.
final class ErrorMessage {
    let text: UnsafeMutablePointer<CChar>
    init(_ s: String) { text = strdup(s) }
    deinit { free(text) }
    static let key = "org.quantkit.c.last-error"
    nonisolated(unsafe) static let empty: UnsafeMutablePointer<CChar> = strdup("")
}

/// Records `message` for `qk_last_error` and returns `status`.
func fail(_ status: qk_status, _ message: String) -> qk_status {
    Thread.current.threadDictionary[ErrorMessage.key] = ErrorMessage(message)
    return status
}

/// The status a Swift error maps to.
func status(of error: Error) -> qk_status {
    switch error {
    case let e as PipelineError:
        switch e {
        case .invalidOptions, .calibration: return QK_INVALID_ARGUMENT
        case .output: return QK_IO_ERROR
        case .insufficientMemory: return QK_OUT_OF_MEMORY
        case .numerical: return QK_NUMERICAL_ERROR
        case .interrupted: return QK_INTERRUPTED
        }
    case QuantizationError.nonFinite, QuantizationError.scaleOverflow: return QK_NUMERICAL_ERROR
    case is QuantizationError, is CInterfaceError: return QK_INVALID_ARGUMENT
    case is GPTQError, is AWQError, is LinearAlgebraError: return QK_NUMERICAL_ERROR
    case let e as SafeTensorsError: return "\(e)".contains("cannot open") || "\(e)".contains("cannot write") ? QK_IO_ERROR : QK_FORMAT_ERROR
    case is PackingError, is LanguageModelError: return QK_FORMAT_ERROR
    case is CocoaError: return QK_IO_ERROR
    default: return QK_INTERNAL_ERROR
    }
}

/// Runs `body`, turning a thrown error into its status and message.
func guarded(_ body: () throws -> Void) -> qk_status {
    do {
        try body()
        return QK_OK
    } catch {
        return fail(status(of: error), "\(error)")
    }
}

/// A bad argument of a C call.
struct CInterfaceError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func require<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw CInterfaceError("\(what) is NULL") }
    return value
}

func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String { String(cString: try require(p, what)) }

extension QuantMethod {
    /// The `qk_method` values, in their order.
    static let byCode: [QuantMethod] = [.rtn, .gptq, .awq, .awqGPTQ]

    init(code: Int32) throws {
        guard Self.byCode.indices.contains(Int(code)) else {
            throw CInterfaceError("method \(code) is not one of QK_METHOD_RTN (0), GPTQ (1), AWQ (2), AWQ_GPTQ (3)")
        }
        self = Self.byCode[Int(code)]
    }

    var code: Int32 { Int32(Self.byCode.firstIndex(of: self)!) }
}

/// The `qk_options` of Swift options, every field resolved.
func cOptions(_ o: QuantizeOptions) -> qk_options {
    var c = qk_options()
    c.method = o.method.code
    c.bits = Int32(o.scheme.bits)
    c.group_size = Int32(o.scheme.configGroupSize)
    c.symmetric = o.scheme.symmetric ? 1 : 0
    c.format = o.format.code
    c.act_order = o.actOrder ? 1 : 0
    c.static_groups = o.staticGroups ? 1 : 0
    c.damping = o.damping
    c.samples = Int32(o.samples)
    c.sequence_length = Int32(o.sequenceLength)
    c.seed = o.seed
    c.max_shard_bytes = Int64(o.maxShardBytes ?? 0)
    c.resume = 0
    return c
}

extension PackFormat {
    /// The `qk_format` value.
    var code: Int32 {
        switch self {
        case .gptq: return 0
        case .gptqV2: return 1
        case .awq: return 2
        case .compressedTensors: return 3
        }
    }

    /// `nil` for QK_FORMAT_RECOMMENDED.
    static func from(code: Int32) throws -> PackFormat? {
        switch code {
        case -1: return nil
        case 0: return .gptq
        case 1: return .gptqV2
        case 2: return .awq
        case 3: return .compressedTensors
        default: throw CInterfaceError("format \(code) is not one of QK_FORMAT_RECOMMENDED (-1), GPTQ (0), GPTQ_V2 (1), AWQ (2), COMPRESSED_TENSORS (3)")
        }
    }
}

/// `1`, `0` or `-1` (recommended) as an optional Bool.
func tristate(_ v: Int32, _ what: String) throws -> Bool? {
    switch v {
    case -1: return nil
    case 0: return false
    case 1: return true
    default: throw CInterfaceError("\(what) must be 1, 0 or -1 (recommended), not \(v)")
    }
}

/// The Swift options a `qk_options` stands for: `RecommendedSettings` wherever a field asks for it.
func quantizeOptions(_ p: UnsafePointer<qk_options>?) throws -> QuantizeOptions {
    let c = try require(p, "options").pointee
    let method = try QuantMethod(code: c.method)
    let scheme = try RecommendedSettings.scheme(for: method, bits: Int(c.bits), groupSize: Int(c.group_size),
                                                symmetric: try tristate(c.symmetric, "symmetric"))
    var o = QuantizeOptions(method: method, scheme: scheme, format: try PackFormat.from(code: c.format),
                            actOrder: try tristate(c.act_order, "act_order"), staticGroups: try tristate(c.static_groups, "static_groups"))
    if c.damping != 0 { o.damping = c.damping }
    if c.samples != 0 { o.samples = Int(c.samples) }
    if c.sequence_length != 0 { o.sequenceLength = Int(c.sequence_length) }
    o.seed = c.seed
    if c.max_shard_bytes != 0 { o.maxShardBytes = Int(c.max_shard_bytes) }
    try o.validate()
    return o
}

/// Moves a Swift object behind an opaque C handle (retained until `release`).
func handle(_ object: AnyObject) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(object).toOpaque()) }
func object<T: AnyObject>(_ h: OpaquePointer?, as: T.Type, _ what: String) throws -> T {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(try require(h, what))).takeUnretainedValue()
}
func release(_ h: OpaquePointer?) {
    if let h { Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(h)).release() }
}

/// Thread count for OpenBLAS from the cores this process may use, once per process.
let configureOnce: Void = { BLASKernel.configureThreads() }()

nonisolated(unsafe) private let loadedCoreName: UnsafeMutablePointer<CChar> = strdup(BLASKernel.loadedCore)
nonisolated(unsafe) private let recommendedCoreName: UnsafeMutablePointer<CChar> = {
    let decision = BLASKernel.decide(loadedCore: BLASKernel.loadedCore, cpu: .current, environment: ProcessInfo.processInfo.environment)
    if case .switchTo(let core) = decision { return strdup(core) }
    return strdup("")
}()

@_cdecl("qk_blas_core")
public func qk_blas_core() -> UnsafePointer<CChar>? { UnsafePointer(loadedCoreName) }

@_cdecl("qk_blas_recommended_core")
public func qk_blas_recommended_core() -> UnsafePointer<CChar>? { UnsafePointer(recommendedCoreName) }

@_cdecl("qk_blas_self_test")
public func qk_blas_self_test() -> qk_status {
    if let failure = BLASKernel.selfTest() { return fail(QK_NUMERICAL_ERROR, "OpenBLAS kernels \(BLASKernel.loadedCore) failed the self-test: \(failure)") }
    return QK_OK
}
