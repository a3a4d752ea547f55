/// QuantKit's version, written into every checkpoint and report it produces.
public enum QuantKitVersion {
    /// QuantKit's version, written into every report and checkpoint.
    public static let string = "0.1.0"
}
