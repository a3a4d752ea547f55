import Foundation

/// One quantized configuration of a comparison run.
public struct ComparisonRun: Codable, Sendable {
    /// `rtn`, `gptq`, `awq` or `awq-gptq`.
    public var method: String
    /// Bits per weight.
    public var bits: Int
    /// The grid (each method's recommended one unless `--sym`/`--asym` was given) and layout.
    public var symmetric: Bool
    /// The packed layout written.
    public var format: String
    /// Perplexity of the written checkpoint on the evaluation text.
    public var perplexity: Double
    /// Perplexity minus the full-precision perplexity.
    public var deltaPerplexity: Double
    /// Wall time of the quantization.
    public var quantizeSeconds: Double
    /// Wall time of the evaluation.
    public var evalSeconds: Double
    /// Bytes of the written checkpoint.
    public var sizeBytes: Int
    /// Peak resident memory during the quantization.
    public var peakResidentBytes: Int?
    /// Mean relative output error of the linears.
    public var meanRelativeError: Double?
    /// Per-linear relative output error, in quantization order.
    public var layerErrors: [Double?]
    /// The checkpoint's folder.
    public var output: String
}

/// `compare.json`.
public struct ComparisonReport: Codable, Sendable {
    /// The QuantKit version that ran the comparison.
    public var quantkitVersion: String
    /// The full-precision checkpoint.
    public var model: String
    /// The calibration text.
    public var calibration: String
    /// The evaluation text.
    public var evaluation: String
    /// Columns per group (−1: whole rows).
    public var groupSize: Int
    /// Calibration windows.
    public var calibrationSamples: Int
    /// Tokens per calibration window.
    public var calibrationSequenceLength: Int
    /// Tokens per evaluation window.
    public var evalSequenceLength: Int
    /// Evaluation windows.
    public var evalWindows: Int
    /// Tokens predicted in the evaluation.
    public var evalTokens: Int
    /// Perplexity of the full-precision model.
    public var fullPrecisionPerplexity: Double
    /// Bytes of the full-precision weights.
    public var fullPrecisionSizeBytes: Int
    /// The linears, in the order of each run's `layerErrors`.
    public var layerNames: [String]
    /// One entry per method × bit width.
    public var runs: [ComparisonRun]

    /// `compare.json`: snake_case keys, sorted, indented.
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// The Markdown table of the README: method, bits, perplexity, Δ vs FP, seconds, size.
    public func table() -> String {
        var lines = ["| method | bits | grid | format | perplexity | Δ vs FP | quantize s | size on disk |", "|---|---|---|---|---|---|---|---|"]
        lines.append(String(format: "| fp16 | 16 | – | – | %.3f | – | – | %.1f MiB |", fullPrecisionPerplexity, Double(fullPrecisionSizeBytes) / 1_048_576))
        for r in runs {
            lines.append(String(format: "| %@ | %d | %@ | %@ | %.3f | %+.3f | %.0f | %.1f MiB |", r.method, r.bits, r.symmetric ? "sym" : "asym",
                                r.format, r.perplexity, r.deltaPerplexity, r.quantizeSeconds, Double(r.sizeBytes) / 1_048_576))
        }
        return lines.joined(separator: "\n")
    }

    /// `sym`, `asym`, or `sym/asym` when the methods used different grids.
    var gridLabel: String {
        Set(runs.map(\.symmetric)).sorted { $0 && !$1 }.map { $0 ? "sym" : "asym" }.joined(separator: "/")
    }

    /// Two panels: perplexity by method and bits (bars, the FP16 level as a line), and the
    /// relative output error of every linear, block by block, per method (log scale).
    public func svg() -> String {
        let width = 960.0, panel = 360.0, margin = 64.0
        let palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
        let methods = runs.map(\.method).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let bitsList = runs.map(\.bits).reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
        func color(_ m: String) -> String { palette[(methods.firstIndex(of: m) ?? 0) % palette.count] }
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(2 * panel + 4 * margin))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="16" font-weight="bold">\(esc((model as NSString).lastPathComponent)): perplexity on \(esc((evaluation as NSString).lastPathComponent)) (\(evalTokens) tokens), g\(groupSize) \(gridLabel)</text>

        """
        // Panel 1: perplexity bars, log-scaled so 3-bit outliers do not flatten the 4-bit bars.
        let top1 = margin, bottom1 = margin + panel
        let ppls = runs.map(\.perplexity) + [fullPrecisionPerplexity]
        let lo = log(max(1, (ppls.min() ?? 1) * 0.9)), hi = log((ppls.max() ?? 10) * 1.1)
        func y1(_ p: Double) -> Double { bottom1 - (log(p) - lo) / (hi - lo) * panel }
        let plotLeft = margin + 20, plotWidth = width - plotLeft - margin
        svg += "<line x1=\"\(plotLeft)\" y1=\"\(bottom1)\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(bottom1)\" stroke=\"#333\"/>\n"
        svg += "<line x1=\"\(plotLeft)\" y1=\"\(top1)\" x2=\"\(plotLeft)\" y2=\"\(bottom1)\" stroke=\"#333\"/>\n"
        for tick in [5.0, 10, 12, 14, 16, 18, 20, 25, 30, 40, 50, 75, 100, 200, 500, 1000] where log(tick) > lo && log(tick) < hi {
            svg += "<line x1=\"\(plotLeft - 4)\" y1=\"\(y1(tick))\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(y1(tick))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(plotLeft - 8)\" y=\"\(y1(tick) + 4)\" text-anchor=\"end\">\(Int(tick))</text>\n"
        }
        let fpY = y1(fullPrecisionPerplexity)
        svg += "<line x1=\"\(plotLeft)\" y1=\"\(fpY)\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(fpY)\" stroke=\"#000\" stroke-dasharray=\"6,4\"/>"
        svg += "<text x=\"\(plotLeft + plotWidth)\" y=\"\(fpY - 6)\" text-anchor=\"end\">fp16 \(String(format: "%.2f", fullPrecisionPerplexity))</text>\n"
        let groupWidth = plotWidth / Double(max(bitsList.count, 1))
        let barWidth = min(60, groupWidth * 0.8 / Double(max(methods.count, 1)))
        for (bi, bits) in bitsList.enumerated() {
            let gx = plotLeft + groupWidth * Double(bi) + (groupWidth - barWidth * Double(methods.count)) / 2
            svg += "<text x=\"\(plotLeft + groupWidth * (Double(bi) + 0.5))\" y=\"\(bottom1 + 20)\" text-anchor=\"middle\" font-weight=\"bold\">\(bits)-bit</text>\n"
            for (mi, m) in methods.enumerated() {
                guard let r = runs.first(where: { $0.method == m && $0.bits == bits }) else { continue }
                let x = gx + barWidth * Double(mi), y = y1(r.perplexity)
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(barWidth - 4)\" height=\"\(bottom1 - y)\" fill=\"\(color(m))\"><title>\(m) W\(bits): \(String(format: "%.3f", r.perplexity))</title></rect>"
                svg += "<text x=\"\(x + (barWidth - 4) / 2)\" y=\"\(y - 4)\" text-anchor=\"middle\" font-size=\"11\">\(String(format: "%.2f", r.perplexity))</text>\n"
            }
        }
        svg += "<text x=\"16\" y=\"\((top1 + bottom1) / 2)\" transform=\"rotate(-90 16 \((top1 + bottom1) / 2))\" text-anchor=\"middle\">perplexity (log scale)</text>\n"
        // Legend.
        for (mi, m) in methods.enumerated() {
            let x = plotLeft + 10 + Double(mi) * 120
            svg += "<rect x=\"\(x)\" y=\"\(top1 - 22)\" width=\"12\" height=\"12\" fill=\"\(color(m))\"/><text x=\"\(x + 16)\" y=\"\(top1 - 12)\">\(esc(m))</text>\n"
        }
        // Panel 2: per-layer relative error (first bit width), log scale.
        let top2 = bottom1 + 2 * margin, bottom2 = top2 + panel
        let bits0 = bitsList.first ?? 4
        let series = runs.filter { $0.bits == bits0 }
        let values = series.flatMap { $0.layerErrors.compactMap { $0 } }.filter { $0 > 0 }
        if let vmin = values.min(), let vmax = values.max(), !layerNames.isEmpty {
            let l0 = log10(vmin) - 0.1, l1 = log10(vmax) + 0.1
            func y2(_ v: Double) -> Double { bottom2 - (log10(v) - l0) / (l1 - l0) * panel }
            func x2(_ i: Int) -> Double { plotLeft + plotWidth * Double(i) / Double(max(layerNames.count - 1, 1)) }
            svg += "<text x=\"\(Int(width / 2))\" y=\"\(top2 - 16)\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">relative output error ‖WX−QX‖²/‖WX‖² of every linear, \(bits0)-bit (log scale)</text>\n"
            svg += "<line x1=\"\(plotLeft)\" y1=\"\(bottom2)\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(bottom2)\" stroke=\"#333\"/>"
            svg += "<line x1=\"\(plotLeft)\" y1=\"\(top2)\" x2=\"\(plotLeft)\" y2=\"\(bottom2)\" stroke=\"#333\"/>\n"
            var e = Int(floor(l0))
            while Double(e) <= l1 {
                if Double(e) >= l0 {
                    svg += "<line x1=\"\(plotLeft)\" y1=\"\(y2(pow(10, Double(e))))\" x2=\"\(plotLeft + plotWidth)\" y2=\"\(y2(pow(10, Double(e))))\" stroke=\"#eee\"/>"
                    svg += "<text x=\"\(plotLeft - 8)\" y=\"\(y2(pow(10, Double(e))) + 4)\" text-anchor=\"end\">1e\(e)</text>\n"
                }
                e += 1
            }
            let perBlock = 7
            for b in stride(from: 0, to: layerNames.count, by: perBlock * 5) {
                svg += "<text x=\"\(x2(b))\" y=\"\(bottom2 + 16)\" text-anchor=\"middle\">block \(b / perBlock)</text>"
            }
            for r in series {
                let pts = r.layerErrors.enumerated().compactMap { i, v in v.flatMap { $0 > 0 ? "\(String(format: "%.1f", x2(i))),\(String(format: "%.1f", y2($0)))" : nil } }
                svg += "<polyline fill=\"none\" stroke=\"\(color(r.method))\" stroke-width=\"1.2\" points=\"\(pts.joined(separator: " "))\"><title>\(r.method)</title></polyline>\n"
            }
        }
        svg += "</svg>\n"
        return svg
    }
}
