/* The C interface is implemented in Swift (target QuantKitC); this target only carries the header. */
