//! URLs safe to log: no userinfo, no query.

use std::fmt;

use http::Uri;

/// Displays a URI as `scheme://host[:port]/path`: without `user:password@` and without the
/// query, which often carries tokens and keys. Fragments never reach a client.
#[derive(Clone, Copy)]
pub(crate) struct Redacted<'a>(pub(crate) &'a Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            // `host()` and `port()` leave out the userinfo.
            f.write_str(authority.host())?;
            if let Some(port) = authority.port() {
                write!(f, ":{port}")?;
            }
        }
        // An authority-form URI (CONNECT) has no path; `path()` would print "/".
        if uri.scheme().is_some() || uri.authority().is_none() {
            f.write_str(uri.path())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
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
    fn origin_and_authority_forms() {
        assert_eq!(redacted("/path?key=secret"), "/path");
        assert_eq!(redacted("example.com:443"), "example.com:443");
    }
}
