//! SPEC 2: the protocol version is a type parameter, so the compiler rejects
//! 5.0-only calls on a 3.1.1 client (the role mypy plays in Python). Each
//! file in tests/compile_fail/ must fail to compile with the error recorded
//! beside it (regenerate with `TRYBUILD=overwrite`, then review).

#[test]
fn v5_only_calls_do_not_compile_on_a_v311_client() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
