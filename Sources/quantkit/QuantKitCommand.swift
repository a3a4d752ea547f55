import ArgumentParser
import QuantCore
import QuantPipeline

@main
struct QuantKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantkit",
        abstract: "Quantize LLM linear layers to 2/3/4/8-bit weights with GPTQ, AWQ or RTN, natively on the CPU.",
        version: QuantKitVersion.string,
        subcommands: [QuantizeCommand.self, CompareCommand.self, EvalCommand.self, InspectCommand.self, VerifyCommand.self, LayerCommand.self, EnvCommand.self])

    static func main() {
        BLASKernel.selectForExecutable()
        ProcessTuning.retainFreedMemory()
        Interruption.installHandlers()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
