import Foundation
import Testing
import QuantCore
import TestSupport

/// FIPS 180-4 / NIST example digests, streaming in pieces, and Python's hashlib on a file.
@Suite struct SHA256Tests {
    @Test func knownAnswers() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func piecesGiveTheSameDigestAsTheWhole() {
        var rng = SplitMix64(seed: 4)
        let message = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = SHA256.hex(message)
        for cuts in [[1], [63, 64, 65], [0, 0, 7, 128, 500], Array(stride(from: 3, to: 1000, by: 37))] {
            var s = SHA256()
            var start = 0
            for c in cuts + [message.count] where c >= start { s.update(message[start..<c]); start = c }
            #expect(s.hexDigest() == whole, "\(cuts)")
        }
    }

    @Test func fileDigestMatchesPythonHashlib() throws {
        let path = Fixtures.temporaryDirectory() + "/f.bin"
        var rng = SplitMix64(seed: 5)
        try Data((0..<(9 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).write(to: URL(fileURLWithPath: path))
        let python = try Fixtures.runPython("import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
                                            pythonPath: "", arguments: [path])
        #expect(try SHA256.hex(ofFile: path) == python.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
