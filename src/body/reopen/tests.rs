use std::convert::Infallible;

use super::*;

#[tokio::test]
async fn a_clone_makes_the_same_body_and_debug_shows_no_closure() {
    let reopen = Reopen::new(|| async { Ok::<_, Infallible>("again") });
    let clone = reopen.clone();
    assert_eq!(clone.open().await.unwrap(), "again");
    assert_eq!(reopen.open().await.unwrap(), "again");
    assert_eq!(format!("{reopen:?}"), "Reopen { .. }");
}
