import ArgumentParser
import Foundation
import QuantPipeline
import Packing
import SafeTensors

/// `quantkit inspect PATH`: what a safetensors file or checkpoint folder holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors file or checkpoint folder, and its quantization config.")

    @Argument(help: "A .safetensors file or a checkpoint folder (model.safetensors, an index, or shards).")
    var path: String

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let ckpt = try SafeTensorsCheckpoint(directory: path)
        var rows: [(String, TensorInfo, String)] = []
        var totalBytes = 0, totalElements = 0
        for name in ckpt.tensorNames {
            let info = try ckpt.info(name)
            rows.append((name, info, ckpt.weightMap[name] ?? ""))
            totalBytes += info.byteCount
            totalElements += info.elementCount
        }
        let quant = try quantizationConfig()
        if json {
            let tensors: [JSONValue] = rows.map { name, info, file in
                .object([("name", .string(name)), ("dtype", .string(info.dtype.rawValue)),
                         ("shape", .array(info.shape.map { .number(Double($0)) })), ("bytes", .number(Double(info.byteCount))),
                         ("file", .string(file))])
            }
            var obj: [(String, JSONValue)] = [("path", .string(path)), ("tensors", .array(tensors)),
                                              ("total_bytes", .number(Double(totalBytes))), ("total_elements", .number(Double(totalElements)))]
            if let quant { obj.append(("quantization_config", quant)) }
            print(JSONValue.object(obj).serialized)
            return
        }
        let width = min(rows.map(\.0.count).max() ?? 4, 72)
        print("name".padding(toLength: width, withPad: " ", startingAt: 0) + "  dtype  shape                 bytes")
        for (name, info, _) in rows {
            let shape = "[" + info.shape.map(String.init).joined(separator: ", ") + "]"
            print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                  + info.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + "  "
                  + shape.padding(toLength: 20, withPad: " ", startingAt: 0) + "  " + formatByteCount(info.byteCount))
        }
        print("\(rows.count) tensors, \(totalElements) elements, \(formatByteCount(totalBytes))")
        if let quant { print("quantization_config: \(quant.serialized)") }
    }

    /// `quantization_config` from a folder's `config.json`, if any; validated.
    func quantizationConfig() throws -> JSONValue? {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        let dir = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        if !isDir.boolValue, let text = try SafeTensorsFile(path: path).metadata["quantization_config"] {
            let q = try JSONParser.parse(Array(text.utf8))
            _ = try QuantizationConfig.parse(q)
            return q
        }
        guard let data = FileManager.default.contents(atPath: dir + "/config.json") else { return nil }
        let config = try JSONParser.parse([UInt8](data))
        guard let q = config["quantization_config"] else { return nil }
        _ = try QuantizationConfig.parse(q)
        return q
    }
}
