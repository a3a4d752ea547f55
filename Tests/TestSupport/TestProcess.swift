import CTestSupport

/// Settings of the test process itself.
public enum TestProcess {
    /// The OpenBLAS thread count set before any test ran (`Tests/CTestSupport`): 1, so that
    /// tests running side by side cannot change each other's rounding.
    public static var initialBLASThreads: Int { Int(quantkit_tests_initial_blas_threads()) }
}
