//! Downloads resumed where their body broke, against an in-memory file server on the
//! paused clock: every byte arrives once, and two versions of a file are never mixed.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::{BodyExt, Empty};
use retryable_http::backoff::Backoff;
use retryable_http::resume::{Reason, Rejected, Resume, ResumeError, Resumes};
use retryable_http::{RetryLayer, RetryOverride};
use support::files::{Break, Files, content};
use tower::{Layer, ServiceExt};

const KIB: usize = 1024;

fn get() -> Request<Empty<Bytes>> {
    Request::get("http://files.test/big.bin")
        .body(Empty::new())
        .unwrap()
}

fn layer() -> RetryLayer {
    RetryLayer::new()
        .no_budget()
        .max_retries(20)
        .backoff(Backoff::constant(Duration::from_millis(100)))
}

/// Reads `body` to its end or its first error: the bytes, and the error.
async fn read<B>(mut body: B) -> (Bytes, Option<Box<dyn std::error::Error + Send + Sync>>)
where
    B: http_body::Body<Data = Bytes, Error = Box<dyn std::error::Error + Send + Sync>> + Unpin,
{
    let mut all = BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    all.extend_from_slice(&data);
                }
            }
            Err(error) => return (all.freeze(), Some(error)),
        }
    }
    (all.freeze(), None)
}

fn resume_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> &'a ResumeError {
    error.downcast_ref::<ResumeError>().expect("a ResumeError")
}

#[tokio::test(start_paused = true)]
async fn a_body_reset_every_100_kib_arrives_whole_with_each_resume_logged() {
    let file = content(1024 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), 200);
    let log = Resumes::of(&response).expect("a resumable response carries its log");
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, file, "every byte once, in order");

    let resumes = log.list();
    let offsets: Vec<u64> = resumes.iter().map(|r| r.offset()).collect();
    let expected: Vec<u64> = (1..=10).map(|k| (k * 100 * KIB) as u64).collect();
    assert_eq!(offsets, expected);
    assert!(
        resumes[0].cause().contains("reset"),
        "{}",
        resumes[0].cause()
    );
    assert_eq!(resumes[0].record().attempts(), 1);
    assert_eq!(resumes[0].waited(), Duration::from_millis(100));
    let asked = files.asked();
    assert_eq!(asked.len(), 11);
    assert!(asked[0].headers.get("range").is_none());
    assert_eq!(asked[1].headers["range"], "bytes=102400-");
    assert_eq!(asked[1].headers["if-range"], "\"v1\"");
}

#[tokio::test(start_paused = true)]
async fn resumes_count_as_attempts_and_stop_when_the_retries_run_out() {
    let file = content(1024 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    let client = layer()
        .max_retries(2)
        .resume_downloads(Resume::new())
        .layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    let error = error.expect("the third break is not resumed");
    let error = resume_error(&*error);
    assert!(matches!(error.reason(), Reason::Exhausted), "{error}");
    assert_eq!(error.offset(), 300 * KIB as u64);
    assert_eq!(
        bytes,
        file.slice(..300 * KIB),
        "what arrived is the file's start"
    );
    assert_eq!(files.asked().len(), 3);
    assert!(error.to_string().contains("after 307200 bytes"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_is_resumed_after_the_stall() {
    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::StallEvery(100 * KIB));
    let client = layer()
        .resume_downloads(Resume::new().stall(Some(Duration::from_secs(5))))
        .layer(files.clone());
    let started = tokio::time::Instant::now();
    let response = client.oneshot(get()).await.unwrap();
    let log = Resumes::of(&response).unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, file);
    assert_eq!(log.list().len(), 2);
    assert!(
        log.list()[0].cause().contains("no byte"),
        "{:?}",
        log.list()
    );
    // Two stalls of 5 s and two waits of 100 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(10_200));
}

#[tokio::test(start_paused = true)]
async fn a_file_replaced_between_attempts_is_never_mixed_in() {
    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB))
        .then_replaced(Bytes::from(vec![0xEE; 300 * KIB]), "\"v2\"");
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    let error = error.unwrap();
    let error = resume_error(&*error);
    // If-Range made the server send the new file whole, with 200.
    assert!(
        matches!(error.reason(), Reason::Rejected(Rejected::NotPartial(s)) if *s == http::StatusCode::OK),
        "{error}"
    );
    assert_eq!(bytes, file.slice(..100 * KIB), "none of the new version");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_ignores_ranges_is_rejected_once_bytes_arrived() {
    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB)).ignoring_ranges();
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    let error = error.unwrap();
    assert!(matches!(
        resume_error(&*error).reason(),
        Reason::Rejected(Rejected::NotPartial(_))
    ));
    assert_eq!(bytes, file.slice(..100 * KIB));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_breaks_before_its_first_byte_restarts_on_a_whole_answer() {
    let file = content(50 * KIB);
    // Broken at byte 0 of the first response; ranges ignored: the restart is the same file.
    let files = Files::new(file.clone(), Break::ResetFirstAt(0)).ignoring_ranges();
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let log = Resumes::of(&response).unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, file);
    assert_eq!(log.list().len(), 1);
    assert_eq!(files.asked().len(), 2);

    // A whole answer of another version is no restart.
    let files = Files::new(file.clone(), Break::ResetFirstAt(0))
        .ignoring_ranges()
        .then_replaced(content(60 * KIB), "\"v2\"");
    let client = layer().resume_downloads(Resume::new()).layer(files);
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(matches!(
        resume_error(&*error.unwrap()).reason(),
        Reason::Rejected(Rejected::NotPartial(_))
    ));
    assert!(bytes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_resumable_body_says_how_much_is_left_and_when_it_ended() {
    use http_body::Body as _;

    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(body.size_hint().exact(), Some(300 * KIB as u64));
    assert!(!body.is_end_stream());
    let mut read = 0;
    while read < 150 * KIB {
        let frame = body.frame().await.unwrap().unwrap();
        read += frame.into_data().unwrap().len();
    }
    // Across a resume, the length left is the first response's, less what was read.
    assert_eq!(body.size_hint().exact(), Some((300 * KIB - read) as u64));
    assert!(format!("{body:?}").contains(&format!("delivered: {read}")));
    while let Some(frame) = body.frame().await {
        frame.unwrap();
    }
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));

    // A body that does not resume says what the inner body says.
    let client = layer().resume_downloads(Resume::new()).layer(files);
    let post = Request::post("http://files.test/big.bin")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = client.oneshot(post).await.unwrap().into_body();
    assert_eq!(body.size_hint().exact(), Some(300 * KIB as u64));
    assert!(!body.is_end_stream());
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_out_of_retries_names_the_stall_as_its_source() {
    let file = content(300 * KIB);
    let stalling = Files::new(file, Break::StallEvery(100 * KIB));
    let client = layer()
        .max_retries(0)
        .resume_downloads(Resume::new().stall(Some(Duration::from_secs(3))))
        .layer(stalling);
    let response = client.oneshot(get()).await.unwrap();
    let (_, error) = read(response.into_body()).await;
    let error = error.unwrap();
    let source = std::error::Error::source(resume_error(&*error)).unwrap();
    let stalled = source
        .downcast_ref::<retryable_http::resume::Stalled>()
        .expect("the stall");
    assert_eq!(stalled.after(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn without_a_validator_nothing_is_resumed_unless_the_risk_is_taken() {
    let file = content(300 * KIB);
    let untagged = || Files::new(file.clone(), Break::ResetEvery(100 * KIB)).untagged();
    let client = layer().resume_downloads(Resume::new()).layer(untagged());
    let response = client.oneshot(get()).await.unwrap();
    assert!(Resumes::of(&response).is_none());
    let (bytes, error) = read(response.into_body()).await;
    let error = error.unwrap();
    assert!(error.downcast_ref::<std::io::Error>().is_some(), "{error}");
    assert_eq!(bytes.len(), 100 * KIB);

    let risky = layer()
        .resume_downloads(Resume::new().without_validator())
        .layer(untagged());
    let response = risky.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, file);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_and_the_budget_bound_resumes() {
    let file = content(300 * KIB);
    let files = || Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    let late = layer()
        .deadline(Duration::from_secs(1))
        .backoff(Backoff::constant(Duration::from_secs(2)))
        .resume_downloads(Resume::new())
        .layer(files());
    let response = late.oneshot(get()).await.unwrap();
    let (_, error) = read(response.into_body()).await;
    assert!(matches!(
        resume_error(&*error.unwrap()).reason(),
        Reason::Deadline
    ));

    let stingy = RetryLayer::new()
        .budget(retryable_http::budget::Budget::new(Duration::from_secs(10), 0, 0.0).unwrap())
        .resume_downloads(Resume::new())
        .layer(files());
    let response = stingy.oneshot(get()).await.unwrap();
    let (_, error) = read(response.into_body()).await;
    assert!(matches!(
        resume_error(&*error.unwrap()).reason(),
        Reason::Budget
    ));
}

#[tokio::test(start_paused = true)]
async fn an_error_that_is_not_a_break_is_the_caller_s_as_it_is() {
    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::BadAt(150 * KIB));
    let client = layer().resume_downloads(Resume::new()).layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.unwrap().is::<support::files::Corrupt>());
    assert_eq!(bytes.len(), 150 * KIB);
    assert_eq!(files.asked().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_a_get_the_layer_or_the_request_opts_in_is_resumed() {
    let file = content(300 * KIB);
    let files = || Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    // Opted in per request only.
    let client = layer()
        .resume_downloads(Resume::new().only_when_asked())
        .layer(files());
    let response = client.clone().oneshot(get()).await.unwrap();
    assert!(Resumes::of(&response).is_none());
    let mut asked = get();
    asked
        .extensions_mut()
        .insert(RetryOverride::new().resume(true));
    let response = client.oneshot(asked).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    assert!(error.is_none());
    assert_eq!(bytes, file);
    // A request with a range of its own is the caller's to resume.
    let client = layer().resume_downloads(Resume::new()).layer(files());
    let ranged = Request::get("http://files.test/big.bin")
        .header("range", "bytes=0-")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = client.clone().oneshot(ranged).await.unwrap();
    assert!(Resumes::of(&response).is_none());
    let post = Request::post("http://files.test/big.bin")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = client.oneshot(post).await.unwrap();
    assert!(Resumes::of(&response).is_none());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_body_mid_resume_ends_everything() {
    let file = content(300 * KIB);
    let files = Files::new(file.clone(), Break::ResetEvery(100 * KIB));
    let client = layer()
        .backoff(Backoff::constant(Duration::from_secs(10)))
        .resume_downloads(Resume::new())
        .layer(files.clone());
    let response = client.oneshot(get()).await.unwrap();
    let mut body = response.into_body();
    let mut read = 0;
    // Up to the break; the next poll starts the wait before the resume.
    let poll = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.into_data().map_or(0, |d| d.len());
        }
    })
    .await;
    assert!(poll.is_err(), "the wait before the resume is 10 s");
    assert_eq!(read, 100 * KIB);
    drop(body);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(files.asked().len(), 1, "no request after the drop");
}

#[cfg(feature = "fault")]
#[tokio::test(start_paused = true)]
async fn a_resume_whose_request_fails_names_that_error_as_its_source() {
    use retryable_http::fault::{Effect, FaultLayer, Match, Rule};

    let file = content(300 * KIB);
    let flaky = Files::new(file, Break::ResetFirstAt(100 * KIB));
    // Every request that resumes fails, for good.
    let faults = FaultLayer::new().rule(
        Rule::new(Effect::Fail(std::io::ErrorKind::PermissionDenied))
            .matching(Match::header(http::header::RANGE, None)),
    );
    let client = tower::ServiceBuilder::new()
        .layer(layer().resume_downloads(Resume::new()))
        .layer(faults)
        .service(flaky);
    let response = client.oneshot(get()).await.unwrap();
    let (bytes, error) = read(response.into_body()).await;
    let error = error.unwrap();
    let error = resume_error(&*error);
    assert!(matches!(error.reason(), Reason::Failed(_)), "{error}");
    let source = std::error::Error::source(error).unwrap();
    assert!(source.is::<retryable_http::Error>(), "{source:?}");
    assert_eq!(bytes.len(), 100 * KIB);
}

#[cfg(feature = "fault")]
#[tokio::test(start_paused = true)]
async fn a_cut_body_keeps_the_whole_length_and_breaks_at_its_byte() {
    use http_body::Body as _;
    use retryable_http::fault::{Effect, FaultLayer, Rule};

    let file = content(300 * KIB);
    // Not on a chunk's boundary: the chunk that crosses it is cut short.
    let faults = FaultLayer::new().rule(Rule::new(Effect::CutBody(100_000)));
    let server = faults.layer(Files::new(file.clone(), Break::Never));
    let response = server.oneshot(get()).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(body.size_hint().exact(), Some(300 * KIB as u64));
    let mut read = Vec::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => read.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(error)) => break error,
            None => panic!("the body ended whole"),
        }
    };
    assert_eq!(read.len(), 100_000);
    assert_eq!(&read[..], &file[..100_000]);
    let io = error.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
}

#[cfg(feature = "fault")]
#[tokio::test(start_paused = true)]
async fn a_fault_layer_that_cuts_every_body_makes_a_download_resume_every_64_kib() {
    use retryable_http::fault::{Effect, FaultLayer, Rule};

    let file = content(1024 * KIB);
    for effect in [
        Effect::CutBody(64 * KIB as u64),
        Effect::ResetBody(64 * KIB as u64),
    ] {
        let faults = FaultLayer::new().rule(Rule::new(effect));
        let log = faults.log();
        let client = tower::ServiceBuilder::new()
            .layer(layer().resume_downloads(Resume::new()))
            .layer(faults)
            .service(Files::new(file.clone(), Break::Never));
        let response = client.oneshot(get()).await.unwrap();
        let resumes = Resumes::of(&response).unwrap();
        let (bytes, error) = read(response.into_body()).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(bytes, file);
        // The last piece is no longer than the cut: it ends as it would.
        assert_eq!(resumes.list().len(), 15);
        assert_eq!(log.len(), 16);
    }
}
