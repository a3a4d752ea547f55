// Quantize a whole checkpoint with GPTQ at the recommended settings (W4 g128, symmetric,
// act-order with static groups, v1 gptq layout). Run: swift run QuantizeModel MODEL_DIR CALIB.txt OUT_DIR
import Foundation
import QuantKit

let args = CommandLine.arguments
guard args.count == 4 else {
    print("usage: QuantizeModel MODEL_DIR CALIB.txt OUT_DIR")
    exit(2)
}
ProcessTuning.retainFreedMemory()
let options = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 128)
let result = try QuantizationPipeline.run(modelDirectory: args[1], calibrationFile: args[2], outputDirectory: args[3], options: options)
print(result.report.summaryTable())
