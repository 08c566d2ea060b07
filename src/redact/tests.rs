use super::*;

fn redacted(s: &str) -> String {
    Redacted(&s.parse().unwrap()).to_string()
}

#[test]
fn drops_userinfo_and_query() {
    assert_eq!(
        redacted("https://user:hunter2@example.com:8443/a/b?token=s3cret"),
        "https://example.com:8443/a/b"
    );
    assert_eq!(redacted("http://example.com"), "http://example.com/");
    assert_eq!(redacted("http://u@[::1]:80/x?y"), "http://[::1]:80/x");
}

#[test]
fn sensitive_header_values_are_masked() {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok3n"));
    headers.insert(COOKIE, HeaderValue::from_static("session=c00kie"));
    let mut marked = HeaderValue::from_static("v4lue");
    marked.set_sensitive(true);
    headers.insert("x-custom", marked);
    headers.insert("accept", HeaderValue::from_static("text/plain"));
    let printed = format!("{:?}", Headers(&headers));
    assert_eq!(
        printed,
        r#"{"authorization": <redacted>, "cookie": <redacted>, "x-custom": <redacted>, "accept": "text/plain"}"#
    );
}

#[test]
fn origin_and_authority_forms() {
    assert_eq!(redacted("/path?key=secret"), "/path");
    assert_eq!(redacted("example.com:443"), "example.com:443");
}

#[test]
fn every_credential_header_is_masked_by_name() {
    let value = HeaderValue::from_static("s3cret");
    for name in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
    ] {
        let name = HeaderName::from_static(name);
        assert!(is_sensitive(&name, &value), "{name}");
    }
    let plain = HeaderName::from_static("x-request-id");
    assert!(!is_sensitive(&plain, &value));
}
