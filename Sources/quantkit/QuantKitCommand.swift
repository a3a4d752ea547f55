import ArgumentParser
import QuantCore

@main
struct QuantKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantkit",
        abstract: "Quantize LLM linear layers to 2/3/4/8-bit weights with GPTQ, AWQ or RTN, natively on the CPU.",
        version: QuantKitVersion.string,
        subcommands: [QuantizeCommand.self, EvalCommand.self, InspectCommand.self, LayerCommand.self])
}
