use super::*;

#[test]
fn every_code_has_its_number_and_name_both_ways() {
    for (n, &(code, name)) in CODES.iter().enumerate() {
        let n = n as i32;
        assert_eq!(code.as_i32(), n);
        assert_eq!(Code::from_i32(n), Some(code));
        assert_eq!(code.as_str(), name);
        assert_eq!(code.to_string(), name);
        assert_eq!(name.parse::<Code>(), Ok(code));
        assert_eq!(name.to_ascii_lowercase().parse::<Code>(), Ok(code));
        assert_eq!(Code::from_header(n.to_string().as_bytes()), code);
    }
    assert_eq!(Code::from_i32(17), None);
    assert_eq!(Code::from_i32(-1), None);
}

#[test]
fn a_name_that_is_no_code_is_refused_with_the_name() {
    let error = "UNAVAILABLE ".parse::<Code>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "no gRPC status code is named \"UNAVAILABLE \""
    );
}

#[test]
fn a_malformed_status_is_unknown() {
    for value in [
        &b""[..],
        b"17",
        b"99",
        b"014",
        b"01",
        b"-1",
        b"1 ",
        b" 1",
        b"+1",
        b"x",
        b"\xff",
    ] {
        assert_eq!(Code::from_header(value), Code::Unknown, "{value:?}");
    }
}
