// Quantize a whole checkpoint with GPTQ (W4 g64, asymmetric, gptq-v2 layout).
// Run: swift run QuantizeModel MODEL_DIR CALIB.txt OUT_DIR
import Foundation
import Packing
import QuantCore
import QuantPipeline

let args = CommandLine.arguments
guard args.count == 4 else {
    print("usage: QuantizeModel MODEL_DIR CALIB.txt OUT_DIR")
    exit(2)
}
ProcessTuning.retainFreedMemory()
let options = QuantizeOptions(method: .gptq, scheme: try QuantScheme(bits: 4, groupSize: 64, symmetric: false), format: .gptqV2,
                              actOrder: true, staticGroups: true, samples: 128, sequenceLength: 512)
let result = try QuantizationPipeline.run(modelDirectory: args[1], calibrationFile: args[2], outputDirectory: args[3], options: options)
print(result.report.summaryTable())
