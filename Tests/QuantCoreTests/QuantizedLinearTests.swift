import Testing
import QuantCore
import TestSupport

@Suite struct QuantizedLinearTests {
    @Test func rtnErrorIsWithinHalfAStepAndDequantizesConsistently() throws {
        var rng = SplitMix64(seed: 5)
        let w = rng.gaussianMatrix(rows: 6, cols: 20)
        for bits in [2, 3, 4, 8] {
            for sym in [true, false] {
                let scheme = try QuantScheme(bits: bits, groupSize: 8, symmetric: sym)
                let q = try RoundToNearest.quantize(w, scheme: scheme)
                #expect(q.groupCount == 3)
                let d = q.dequantized()
                for o in 0..<6 {
                    for c in 0..<20 {
                        let g = c / 8
                        let s = q.scales[g * 6 + o]
                        // fp16 rounding of the scale can push the range end past maxq·s slightly.
                        let bound = s * (0.5 + Float(scheme.maxq) * 0x1p-11) + 1e-7
                        // Symmetric grids clip +absmax to (2^(b-1)-1)·s: one extra half step.
                        let extra: Float = sym ? s * 0.5 : 0
                        #expect(abs(d[o, c] - w[o, c]) <= bound + extra, "bits \(bits) sym \(sym) (\(o),\(c))")
                    }
                }
            }
        }
    }

    @Test func shorterLastGroupUsesOnlyItsOwnColumns() throws {
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: false)
        var w = Matrix<Float>(rows: 1, cols: 20)
        for c in 0..<16 { w[0, c] = Float(c) - 100 }
        for c in 16..<20 { w[0, c] = Float(c - 16) * 0.1 }  // 0, .1, .2, .3
        let q = try RoundToNearest.quantize(w, scheme: scheme)
        #expect(q.scales[2] == HalfPrecision.roundedToHalf(0.3 / 15))
        #expect(q.zeros[2] == 0)
        #expect(q.groupIndex == (0..<20).map { Int32($0 / 8) })
    }

    @Test func invariantsAreChecked() throws {
        let s = try QuantScheme(bits: 4, groupSize: 2, symmetric: true)
        #expect(throws: QuantizationError.self) {
            try QuantizedLinear(outFeatures: 1, inFeatures: 2, scheme: s, codes: [16, 0], scales: [1], zeros: [8], groupIndex: [0, 0])
        }
        #expect(throws: QuantizationError.self) {
            try QuantizedLinear(outFeatures: 1, inFeatures: 2, scheme: s, codes: [1, 0], scales: [1], zeros: [7], groupIndex: [0, 0])
        }
        #expect(throws: QuantizationError.self) {
            try QuantizedLinear(outFeatures: 1, inFeatures: 2, scheme: s, codes: [1, 0], scales: [.nan], zeros: [8], groupIndex: [0, 0])
        }
        #expect(throws: QuantizationError.self) {
            try QuantizedLinear(outFeatures: 1, inFeatures: 2, scheme: s, codes: [1, 0], scales: [1], zeros: [8], groupIndex: [0, 1])
        }
        #expect(throws: QuantizationError.self) {
            try QuantizedLinear(outFeatures: 1, inFeatures: 2, scheme: s, codes: [1, 0], scales: [1], zeros: [8], groupIndex: [0, 0], permutation: [1, 1])
        }
        var bad = Matrix<Float>(rows: 1, cols: 2)
        bad[0, 1] = .nan
        #expect(throws: QuantizationError.nonFinite(what: "weight")) { try RoundToNearest.quantize(bad, scheme: s) }
    }
}
