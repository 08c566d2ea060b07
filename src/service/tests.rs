use super::*;

#[derive(Debug, Clone, PartialEq)]
struct Client(u8);

#[test]
fn a_retry_service_shows_its_client_and_settings_and_gives_them_back() {
    let mut retry = Retry::new(Client(7));
    let shown = format!("{retry:?}");
    assert!(
        shown.starts_with("Retry { inner: Client(7), config: RetryLayer { max_retries: 4"),
        "{shown}"
    );
    retry.get_mut().0 = 8;
    assert_eq!(retry.get_ref(), &Client(8));
    assert_eq!(retry.into_inner(), Client(8));
}
