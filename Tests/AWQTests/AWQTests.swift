import Testing
import QuantCore
@testable import AWQ
import TestSupport

@Suite struct AWQVectorTests {
    @Test func normalizationVectors() {
        // AWQ-REFERENCE §7: x = [0.01, 0.1, 1, 10], x-only.
        let x: [Float] = [0.01, 0.1, 1, 10]
        #expect(AWQScaleSearch.scales(activationMean: x, weightMean: nil, ratio: 0) == [1, 1, 1, 1])
        let half = AWQScaleSearch.scales(activationMean: x, weightMean: nil, ratio: 0.5)
        for (a, b) in zip(half, [0.17783, 0.56234, 1.77828, 5.62341] as [Float]) { #expect(abs(a - b) < 1e-4) }
        let one = AWQScaleSearch.scales(activationMean: x, weightMean: nil, ratio: 1)
        for (a, b) in zip(one, [0.031623, 0.31623, 3.1623, 31.623] as [Float]) { #expect(abs(a - b) / b < 1e-4) }
        for s in [half, one] { #expect(abs(s.max()! * s.min()! - 1) < 1e-5) }
    }

    @Test func degenerateStatisticsGiveFiniteScales() {
        // Zero-activation channels and all-zero weight columns: the clamps keep everything finite.
        let s = AWQScaleSearch.scales(activationMean: [0, 0, 1, 5], weightMean: [0, 0.5, 0, 1], ratio: 0.4)
        #expect(s.allSatisfy { $0.isFinite && $0 > 0 })
        let z = AWQScaleSearch.scales(activationMean: [0, 0, 0], weightMean: nil, ratio: 0.7)
        #expect(z == [1, 1, 1])
        var w = Matrix<Float>(rows: 2, cols: 4)
        w[1, 3] = 2
        #expect(AWQScaleSearch.weightMean([w], scheme: try! QuantScheme(bits: 4, groupSize: 2, symmetric: false)).allSatisfy { $0.isFinite })
    }

    @Test func candidatesHaveNoDuplicateAndIncludeIdentity() {
        let duo = AWQScaleSearch.candidates(AWQSearchOptions())
        #expect(duo.count == 21 && duo[0].ratio == nil)
        let xOnly = AWQScaleSearch.candidates(AWQSearchOptions(grid: .activationOnly))
        #expect(xOnly.count == 20)  // x-only r = 0 is the identity: evaluated once
        #expect(Set(xOnly.map { "\($0.ratio.map { "\($0)" } ?? "id")\($0.duo)" }).count == xOnly.count)
    }

    @Test func asymmetricGroupOfEightAndFakeQuantization() throws {
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: false)
        let w = Matrix<Float>([[-1, -0.625, 0, 0.375, 0.625, 1.125, 2, 2.75]])
        let q = AWQScaleSearch.fakeQuantized(w, scales: [Float](repeating: 1, count: 8), scheme: scheme)
        #expect(q.storage == [-1, -0.5, 0, 0.5, 0.5, 1, 2, 2.75])
        // Scaling by a power of two commutes with quantization exactly.
        let q2 = AWQScaleSearch.fakeQuantized(w, scales: [Float](repeating: 2, count: 8), scheme: scheme)
        #expect(q2.storage == q.storage)
    }
}

@Suite struct AWQBehaviourTests {
    /// Activations with a few salient channels (large mean |x|).
    func salient(tokens: Int, columns: Int, rng: inout SplitMix64) -> Matrix<Float> {
        var x = rng.gaussianMatrix(rows: tokens, cols: columns)
        for t in 0..<tokens { for c in stride(from: 0, to: columns, by: 16) { x[t, c] *= 25 } }
        return x
    }

    @Test func scaleSearchBeatsRTNOnSalientChannels() throws {
        var rng = SplitMix64(seed: 3)
        let x = salient(tokens: 512, columns: 64, rng: &rng)
        let w = rng.gaussianMatrix(rows: 48, cols: 64)
        let scheme = try QuantScheme(bits: 3, groupSize: 32, symmetric: false)
        var stats = ActivationStatistics(columns: 64)
        try stats.add(x)
        let reference = x.multiplied(by: w, transposeOther: true)
        let choice = try AWQScaleSearch.search(mapping: "test", weights: [w], activationMean: stats.meanAbs, scheme: scheme,
                                               options: AWQSearchOptions(), reference: reference) { x.multiplied(by: $0[0], transposeOther: true) }
        let rtn = choice.identityLoss!
        // Measured (seed 3, W3 g32 asym): RTN MSE 74.6, AWQ 20.4 (0.27× RTN) at duo ratio 0.40.
        #expect(choice.loss < 0.5 * rtn, "AWQ \(choice.loss) vs RTN \(rtn)")
        #expect(choice.losses.allSatisfy { $0 >= choice.loss })
    }

    @Test func chosenLossNeverExceedsRTN() throws {
        var rng = SplitMix64(seed: 4)
        for trial in 0..<5 {
            let x = rng.gaussianMatrix(rows: 128, cols: 32)  // no salient channels: scaling may not help
            let w = rng.gaussianMatrix(rows: 16, cols: 32)
            let scheme = try QuantScheme(bits: 4, groupSize: 16, symmetric: trial % 2 == 0)
            var stats = ActivationStatistics(columns: 32)
            try stats.add(x)
            let ref = x.multiplied(by: w, transposeOther: true)
            let c = try AWQScaleSearch.search(mapping: "t", weights: [w], activationMean: stats.meanAbs, scheme: scheme,
                                              options: AWQSearchOptions(), reference: ref) { x.multiplied(by: $0[0], transposeOther: true) }
            #expect(c.loss <= c.identityLoss!)
        }
    }

    @Test func aCustomQuantizerJudgesEveryCandidate() throws {
        // The search can judge candidates by another quantizer (the pipeline plugs in GPTQ):
        // it is called once per candidate, first with the identity, and its outputs are what
        // the loss sees. Here: RTN on a coarser 2-bit grid, checked against fakeQuantized.
        var rng = SplitMix64(seed: 9)
        let x = salient(tokens: 128, columns: 32, rng: &rng)
        let w = rng.gaussianMatrix(rows: 8, cols: 32)
        let scheme = try QuantScheme(bits: 4, groupSize: 16, symmetric: false)
        let coarse = try QuantScheme(bits: 2, groupSize: 16, symmetric: false)
        var stats = ActivationStatistics(columns: 32)
        try stats.add(x)
        let ref = x.multiplied(by: w, transposeOther: true)
        var seen: [[Float]] = []
        let options = AWQSearchOptions()
        let c = try AWQScaleSearch.search(mapping: "t", weights: [w], activationMean: stats.meanAbs, scheme: scheme, options: options,
                                          reference: ref, quantize: { ws, s in
                                              seen.append(s)
                                              return ws.map { AWQScaleSearch.fakeQuantized($0, scales: s, scheme: coarse) }
                                          }) { x.multiplied(by: $0[0], transposeOther: true) }
        #expect(seen.count == AWQScaleSearch.candidates(options).count)
        #expect(seen[0] == [Float](repeating: 1, count: 32))
        let identity = AWQScaleSearch.meanSquaredError(x.multiplied(by: AWQScaleSearch.fakeQuantized(w, scales: seen[0], scheme: coarse),
                                                                    transposeOther: true), ref)
        #expect(c.identityLoss == identity)
        #expect(c.loss <= identity)
    }

    @Test func clipNeverIncreasesAGroupsError() throws {
        var rng = SplitMix64(seed: 5)
        let x = salient(tokens: 256, columns: 64, rng: &rng)
        var w = rng.gaussianMatrix(rows: 8, cols: 64)
        w[0, 3] = 12  // an outlier worth clipping
        let original = w
        let scheme = try QuantScheme(bits: 4, groupSize: 32, symmetric: false)
        let maxima = AWQClipSearch.clip(&w, inputs: x, scheme: scheme)
        #expect(maxima.count == 16)
        func groupError(_ m: Matrix<Float>, _ o: Int, _ g: Int) -> Double {
            let cols = scheme.columns(ofGroup: g, columns: 64)
            let grid = scheme.grid(of: cols.map { m[o, $0] })
            var e = 0.0
            for t in 0..<x.rows {
                var d: Float = 0
                for c in cols { d += x[t, c] * (scheme.fakeQuantize(m[o, c], on: grid) - original[o, c]) }
                e += Double(d * d)
            }
            return e
        }
        for o in 0..<8 { for g in 0..<2 { #expect(groupError(w, o, g) <= groupError(original, o, g) * (1 + 1e-5) + 1e-9) } }
        #expect(w[0, 3] < 12)
    }

    @Test func foldingLeavesTheFullPrecisionFunctionUnchanged() throws {
        var rng = SplitMix64(seed: 6)
        // norm → linear: (x ⊙ γ/s)·(W·diag s)ᵀ == (x ⊙ γ)·Wᵀ
        let x = rng.gaussianMatrix(rows: 16, cols: 24)
        let gamma = (0..<24).map { _ in Float(0.5 + rng.nextUniform()) }
        let w = rng.gaussianMatrix(rows: 8, cols: 24)
        let s = (0..<24).map { _ in Float(0.2 + 3 * rng.nextUniform()) }
        func normed(_ g: [Float]) -> Matrix<Float> {
            var m = x
            for t in 0..<16 { for c in 0..<24 { m[t, c] *= g[c] } }
            return m
        }
        var ws = w
        AWQFolding.scaleColumns(&ws, by: s)
        let before = normed(gamma).multiplied(by: w, transposeOther: true)
        let after = normed(AWQFolding.divide(gamma, by: s)).multiplied(by: ws, transposeOther: true)
        #expect(zip(before.storage, after.storage).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
        // A Gemma norm multiplies by 1 + w: folding keeps that product.
        let w0 = gamma.map { $0 - 1 }
        let afterOffset = normed(AWQFolding.divide(w0, by: s, offset: 1).map { 1 + $0 }).multiplied(by: ws, transposeOther: true)
        #expect(zip(before.storage, afterOffset.storage).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
        // linear → linear (up → down): rows of the first divided, columns of the second scaled.
        var up = rng.gaussianMatrix(rows: 24, cols: 10), down = rng.gaussianMatrix(rows: 6, cols: 24)
        var bias: [Float]? = (0..<24).map { _ in Float(rng.nextGaussian()) }
        let input = rng.gaussianMatrix(rows: 5, cols: 10)
        func run(_ u: Matrix<Float>, _ b: [Float]?, _ d: Matrix<Float>) -> Matrix<Float> {
            var h = input.multiplied(by: u, transposeOther: true)
            for t in 0..<5 { for c in 0..<24 { h[t, c] += b![c] } }
            return h.multiplied(by: d, transposeOther: true)
        }
        let ref = run(up, bias, down)
        AWQFolding.divideRows(&up, bias: &bias, by: s)
        AWQFolding.scaleColumns(&down, by: s)
        let got = run(up, bias, down)
        #expect(zip(ref.storage, got.storage).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
    }

    @Test func degenerateInputs() throws {
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: false)
        // No tokens at all: zero means, identity-like scales, a finite loss.
        let stats = ActivationStatistics(columns: 16)
        #expect(stats.meanAbs == [Float](repeating: 0, count: 16))
        let w = Matrix<Float>(rows: 4, cols: 16)  // all-zero weight groups
        let empty = Matrix<Float>(rows: 0, cols: 16)
        let c = try AWQScaleSearch.search(mapping: "t", weights: [w], activationMean: stats.meanAbs, scheme: scheme,
                                          options: AWQSearchOptions(), reference: Matrix<Float>(rows: 0, cols: 4)) { empty.multiplied(by: $0[0], transposeOther: true) }
        #expect(c.scales.allSatisfy { $0.isFinite && $0 > 0 })
        #expect(!c.loss.isNaN)
        // Constant groups quantize exactly.
        let constant = Matrix<Float>(rows: 2, cols: 16, repeating: 0.75)
        #expect(AWQScaleSearch.fakeQuantized(constant, scales: [Float](repeating: 1, count: 16), scheme: scheme).storage.allSatisfy { abs($0 - 0.75) < 1e-3 })
        var wz = Matrix<Float>(rows: 3, cols: 16)
        #expect(AWQClipSearch.clip(&wz, inputs: empty, scheme: scheme).allSatisfy { $0 == 0 })
    }
}

@Suite struct AWQLayerTests {
    @Test func layerAPIReturnsScalesClipsAndAnEquivalentEffectiveWeight() throws {
        var rng = SplitMix64(seed: 12)
        var x = rng.gaussianMatrix(rows: 600, cols: 64)
        for t in 0..<600 { for c in stride(from: 0, to: 64, by: 16) { x[t, c] *= 25 } }
        let w = rng.gaussianMatrix(rows: 32, cols: 64)
        let gamma = (0..<64).map { _ in Float(0.5 + rng.nextUniform()) }
        let scheme = try QuantScheme(bits: 3, groupSize: 32, symmetric: false)
        // Streamed in two chunks.
        let r = try AWQLayer.quantize(weights: [w], activations: [x.rows(0..<300), x.rows(300..<600)], previousNorm: gamma, scheme: scheme)
        #expect(r.scales.count == 64 && r.clipMaxima?.first?.count == 64)
        #expect(r.previousNorm! == zip(gamma, r.scales).map { $0 / $1 })
        // The stored weight is Q(W·diag s); applied to x/s it equals the effective weight applied to x.
        var xs = x
        AWQFolding.divideColumns(&xs, by: r.scales)
        let a = xs.multiplied(by: r.quantized[0].dequantized(), transposeOther: true)
        let b = x.multiplied(by: r.effectiveWeights()[0], transposeOther: true)
        #expect(zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($0)) })
        // And it beats RTN on the layer's own output.
        let rtn = try RoundToNearest.quantize(w, scheme: scheme).dequantized()
        let ref = x.multiplied(by: w, transposeOther: true)
        #expect(AWQScaleSearch.meanSquaredError(b, ref) < AWQScaleSearch.meanSquaredError(x.multiplied(by: rtn, transposeOther: true), ref))
    }
}
