import QuantCore

/// SHA-256 hex digest of a byte string (QuantCore's implementation, checked by `SHA256Tests`).
public func sha256Hex(_ message: [UInt8]) -> String { SHA256.hex(message) }
