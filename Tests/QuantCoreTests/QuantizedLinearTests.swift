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

    @Test func rtnOnGivenGridsUsesThemAndChecksTheirCount() throws {
        var rng = SplitMix64(seed: 6)
        let w = rng.gaussianMatrix(rows: 3, cols: 10)
        let scheme = try QuantScheme(bits: 4, groupSize: 4, symmetric: false)   // groups 4, 4, 2
        let plain = try RoundToNearest.quantize(w, scheme: scheme)
        // The min–max grids passed explicitly reproduce plain RTN exactly.
        var grids: [GroupGrid] = []
        for g in 0..<3 { for o in 0..<3 { grids.append(GroupGrid(scale: plain.scales[g * 3 + o], zero: Int32(plain.zeros[g * 3 + o]))) } }
        #expect(try RoundToNearest.quantize(w, scheme: scheme, grids: grids) == plain)
        // A different grid for (group 1, row 2) changes only that group's codes.
        grids[1 * 3 + 2] = GroupGrid(scale: 1, zero: 8)
        let other = try RoundToNearest.quantize(w, scheme: scheme, grids: grids)
        #expect(other.scales[1 * 3 + 2] == 1)
        for o in 0..<3 { for c in 0..<10 where !(o == 2 && (4..<8).contains(c)) { #expect(other.codes[o * 10 + c] == plain.codes[o * 10 + c]) } }
        #expect(throws: QuantizationError.self) { try RoundToNearest.quantize(w, scheme: scheme, grids: Array(grids.dropLast())) }
    }

    @Test func allFiniteFindsNaNAndInfinityAnywhere() {
        for n in [0, 1, 31, 32, 33, 100] {
            let clean = [Float](repeating: 1.5, count: n)
            #expect(clean.withUnsafeBufferPointer { allFinite($0) })
            for position in [0, n / 2, n - 1] where n > 0 {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var v = clean
                    v[position] = bad
                    #expect(!v.withUnsafeBufferPointer { allFinite($0) }, "n \(n) at \(position): \(bad)")
                }
            }
        }
        #expect(Matrix<Double>(rows: 2, cols: 2, storage: [1, -0.0, .greatestFiniteMagnitude, 0]).isFinite)
        #expect(!Matrix<Double>(rows: 1, cols: 2, storage: [1, .nan]).isFinite)
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
