/// QuantKit's version, written into every checkpoint and report it produces.
public enum QuantKitVersion {
    public static let string = "0.1.0"
}
