import ArgumentParser
import Foundation
import LanguageModel
import QuantPipeline
import SafeTensors

/// `quantkit eval`: perplexity of a model (FP or QuantKit-quantized) on a text.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity of a checkpoint on a text: consecutive non-overlapping windows, no BOS.")

    @Option(help: "Checkpoint folder (config.json, tokenizer.json, safetensors).")
    var model: String

    @Option(help: "Plain-text file to evaluate on.")
    var text: String

    @Option(help: "Tokens per window.")
    var seqlen: Int = 2048

    @Option(help: "Evaluate only the first N windows (default: all).")
    var windows: Int?

    @Flag(help: "Print one JSON object on stdout instead of a sentence.")
    var json = false

    func validate() throws {
        guard seqlen >= 2 else { throw ValidationError("--seqlen must be at least 2") }
        if let windows, windows < 1 { throw ValidationError("--windows must be positive") }
    }

    func run() throws {
        let lm = try CausalLM(directory: model)
        let tokenizer = try Tokenizer(path: model + "/tokenizer.json")
        guard let body = try? String(contentsOfFile: text, encoding: .utf8) else { throw ValidationError("cannot read \(text) as UTF-8 text") }
        let ids = tokenizer.encode(body)
        let progress = ProgressReporter("eval: block")
        let r = try ModelRunner.perplexity(lm, tokens: ids, sequenceLength: seqlen, maxWindows: windows, progress: { progress.update($0, of: $1) },
                                           checkStop: { if let signal = Interruption.pending() { throw EvaluationStopped(signal: signal) } })
        if json {
            print(JSONValue.object([
                ("perplexity", .number(r.perplexity)), ("mean_nll", .number(r.meanNLL)), ("tokens", .number(Double(r.tokens))),
                ("windows", .number(Double(r.windows))), ("seqlen", .number(Double(r.sequenceLength))),
                ("seconds", .number(r.seconds)), ("tokens_per_second", .number(r.tokensPerSecond)),
                ("model", .string(model)), ("text", .string(text)),
            ]).serialized)
        } else {
            print(String(format: "perplexity %.4f over %d predicted tokens (%d windows of %d) in %.1f s, %.0f tokens/s",
                         r.perplexity, r.tokens, r.windows, r.sequenceLength, r.seconds, r.tokensPerSecond))
        }
    }
}

/// A stop (SIGINT, SIGTERM) during `quantkit eval`, which is acted on before the next block.
struct EvaluationStopped: Error, CustomStringConvertible {
    let signal: String
    var description: String { "interrupted by \(signal): the evaluation was stopped before it finished; nothing was printed" }
}
