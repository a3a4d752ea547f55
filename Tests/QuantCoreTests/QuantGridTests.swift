import Testing
import QuantCore
import TestSupport

@Suite struct QuantGridTests {
    let sym4 = try! QuantScheme(bits: 4, groupSize: nil, symmetric: true)
    let asym4 = try! QuantScheme(bits: 4, groupSize: nil, symmetric: false)

    @Test func symmetricReferenceRow() {
        // GPTQ-REFERENCE §8.4: [-1, .5, .25, 0] → s = 2/15, z = 8, codes [0, 12, 10, 8].
        let row: [Float] = [-1, 0.5, 0.25, 0]
        let g = sym4.grid(of: row)
        #expect(g.scale == HalfPrecision.roundedToHalf(2.0 / 15))
        #expect(g.zero == 8)
        #expect(row.map { sym4.code($0, on: g) } == [0, 12, 10, 8])
        let deq = row.map { sym4.fakeQuantize($0, on: g) }
        for (d, r) in zip(deq, [-1.0667, 0.5333, 0.2667, 0] as [Float]) { #expect(abs(d - r) < 1e-3) }
    }

    @Test func tiesRoundHalfToEven() {
        let unit = GroupGrid(scale: 1, zero: 0)
        #expect(asym4.code(2.5, on: unit) == 2)
        #expect(asym4.code(3.5, on: unit) == 4)
        #expect(asym4.code(0.5, on: unit) == 0)
        let z4 = GroupGrid(scale: 1, zero: 4)
        #expect(asym4.code(-2.5, on: z4) == 2)  // round(-2.5) = -2
        #expect(asym4.code(-1.5, on: z4) == 2)  // round(-1.5) = -2
        #expect(roundHalfEven(-7.5) == -8)
        #expect(roundHalfEven(6.5) == 6)
        #expect(roundHalfEven(1e9) == 4_194_304)  // clamped, harmless after code clamping
    }

    @Test func asymmetricAWQVector() {
        // AWQ-REFERENCE §7: g = 8 asymmetric → s = 0.25, z = 4, codes [0,2,4,6,6,8,12,15].
        let w: [Float] = [-1, -0.625, 0, 0.375, 0.625, 1.125, 2, 2.75]
        let g = asym4.grid(of: w)
        #expect(g.scale == 0.25)
        #expect(g.zero == 4)
        #expect(w.map { asym4.code($0, on: g) } == [0, 2, 4, 6, 6, 8, 12, 15])
        #expect(w.map { asym4.fakeQuantize($0, on: g) } == [-1, -0.5, 0, 0.5, 0.5, 1, 2, 2.75])
    }

    @Test func singleSignGroupsUnderBothRules() throws {
        let row: [Float] = [0, 1, 0.5]
        // The GPTQ reference quirk: s = 1/15, codes [8, 15, 15], 1.0 comes back as 0.4667.
        let legacy = try QuantScheme(bits: 4, groupSize: nil, symmetric: true, singleSignRule: .gptqReference)
        let gl = legacy.grid(of: row)
        #expect(gl.scale == HalfPrecision.roundedToHalf(1.0 / 15))
        #expect(row.map { legacy.code($0, on: gl) } == [8, 15, 15])
        #expect(abs(legacy.fakeQuantize(1, on: gl) - 0.4667) < 1e-3)
        // QuantKit's rule (as compressed-tensors): s = 2·absmax/15, the whole grid is used.
        let g = sym4.grid(of: row)
        #expect(g.scale == HalfPrecision.roundedToHalf(2.0 / 15))
        #expect(row.map { sym4.code($0, on: g) } == [8, 15, 12])
        // Rows with a negative value agree under both rules.
        let mixed: [Float] = [-0.3, 1, 0.5]
        #expect(legacy.grid(of: mixed) == sym4.grid(of: mixed))
    }

    @Test func autoAWQCompatibleGrids() throws {
        // AWQ-REFERENCE §7, single-sign quirk: w = [0.5, 0.6, …, 1.2] → s = 0.7/15, z = clamp(−11) = 0,
        // q = [11, 13, 15, 15, 15, 15, 15, 15]: every value ≥ 0.7 comes back as 0.7.
        let compat = try QuantScheme(bits: 4, groupSize: 8, symmetric: false, singleSignRule: .autoAWQ)
        let w: [Float] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
        let g = compat.grid(of: w)
        #expect(g.scale == HalfPrecision.roundedToHalf(0.7 / 15))
        #expect(g.zero == 0)
        #expect(w.map { compat.code($0, on: g) } == [11, 13, 15, 15, 15, 15, 15, 15])
        #expect(abs(compat.fakeQuantize(1.2, on: g) - 0.7) < 1e-3)
        // A range that contains 0 gives the same grid as QuantKit's rule (the g = 8 vector).
        let mixed: [Float] = [-1, -0.625, 0, 0.375, 0.625, 1.125, 2, 2.75]
        #expect(compat.grid(of: mixed) == asym4.grid(of: mixed))
        // Symmetric AutoAWQ: s = absmax / 7 = 2.75 / 7, q = [−3, −2, 0, 1, 2, 3, 5, 7] (codes + 8).
        let compatSym = try QuantScheme(bits: 4, groupSize: 8, symmetric: true, singleSignRule: .autoAWQ)
        let gs = compatSym.grid(of: mixed)
        #expect(gs.scale == HalfPrecision.roundedToHalf(2.75 / 7))
        #expect(mixed.map { Int(compatSym.code($0, on: gs)) - 8 } == [-3, -2, 0, 1, 2, 3, 5, 7])
        // A constant group: the range clamps to 1e-5, as AutoAWQ's clamp(max − min, 1e-5).
        let c = compat.grid(of: [0.3, 0.3] as [Float])
        #expect(c.scale == HalfPrecision.roundedToHalf(1e-5 / 15))
    }

    @Test func asymmetricRangeAlwaysContainsZero() {
        let g = asym4.grid(of: [0.5, 0.6, 1.2] as [Float])
        #expect(g.zero == 0)
        #expect(g.scale == HalfPrecision.roundedToHalf(1.2 / 15))
        let neg = asym4.grid(of: [-3, -1] as [Float])
        #expect(neg.zero == 15)
    }

    @Test func allZeroGroupGetsUnitRange() {
        let g = sym4.grid(of: [0, 0, 0] as [Float])
        #expect(g.scale == HalfPrecision.roundedToHalf(2.0 / 15))
        #expect(sym4.code(0, on: g) == 8)
        let a = asym4.grid(of: [0, 0] as [Float])
        #expect(asym4.fakeQuantize(0, on: a) == 0)
    }

    @Test func schemeValidationAndGroups() throws {
        #expect(throws: QuantizationError.unsupportedBits(5)) { try QuantScheme(bits: 5, groupSize: 128, symmetric: true) }
        #expect(throws: QuantizationError.invalidGroupSize(0)) { try QuantScheme(bits: 4, groupSize: 0, symmetric: true) }
        let g128 = try QuantScheme(bits: 4, groupSize: 128, symmetric: true)
        #expect(g128.groupCount(columns: 576) == 5)
        #expect(g128.columns(ofGroup: 4, columns: 576) == 512..<576)
        #expect(try QuantScheme(bits: 4, groupSize: -1, symmetric: true).groupSize == nil)
    }
}
