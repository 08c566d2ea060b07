//! Bodies made again for a retry: [`Reopen`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::BoxError;

/// The future a [`Reopen`] returns.
pub(crate) type Reopening<B> = Pin<Box<dyn Future<Output = Result<B, BoxError>> + Send>>;

/// A way to make a request body again, for retries of bodies larger than the replay cap.
///
/// Put it in the request's extensions, typed on the request's body type. When the bytes
/// kept in memory cannot cover a retry — the body outgrew
/// [`replay_limit`](crate::RetryLayer::replay_limit), or an earlier attempt still holds it —
/// the layer calls it before the retry and sends the new body as it is, keeping nothing.
/// This is go-retryablehttp's `ReaderFunc`, or its rewound `io.ReadSeeker`.
///
/// Every attempt starts from the caller's request head, so a `Content-Length` set there is
/// sent with every attempt: the body made again must have the same length. A factory that
/// fails ends the request with an [`Error`](crate::Error) that names it
/// ([`Error::is_reopen`](crate::Error::is_reopen)).
///
/// # Example: a file upload
///
/// ```no_run
/// use std::io;
/// use std::path::PathBuf;
///
/// use bytes::Bytes;
/// use futures_util::TryStreamExt;
/// use http_body::{Body, Frame};
/// use http_body_util::StreamBody;
/// use retryable_http::body::Reopen;
/// use tokio::fs::File;
/// use tokio_util::io::ReaderStream;
///
/// /// A file, streamed in chunks of 64 KiB.
/// fn file_body(file: File) -> impl Body<Data = Bytes, Error = io::Error> + Send + Unpin {
///     StreamBody::new(ReaderStream::with_capacity(file, 64 * 1024).map_ok(Frame::data))
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let path = PathBuf::from("backup.tar");
/// let file = File::open(&path).await?;
/// let len = file.metadata().await?.len();
/// let mut request = http::Request::put("http://storage.example/backup.tar")
///     .header(http::header::CONTENT_LENGTH, len)
///     .body(file_body(file))?;
/// // Each retry opens the file again and streams it from the start.
/// request.extensions_mut().insert(Reopen::new(move || {
///     let path = path.clone();
///     async move { Ok::<_, io::Error>(file_body(File::open(path).await?)) }
/// }));
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Cloning is cheap: the factory is shared through an [`Arc`].
pub struct Reopen<B> {
    make: Arc<dyn Fn() -> Reopening<B> + Send + Sync>,
}

impl<B> Reopen<B> {
    /// A factory that makes the body with `make`, once for each attempt that needs it.
    pub fn new<F, Fut, E>(make: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<B, E>> + Send + 'static,
        E: Into<BoxError>,
        B: 'static,
    {
        Reopen {
            make: Arc::new(move || {
                let future = make();
                Box::pin(async move { future.await.map_err(Into::into) })
            }),
        }
    }

    /// Starts making the body again.
    pub(crate) fn open(&self) -> Reopening<B> {
        (self.make)()
    }
}

impl<B> Clone for Reopen<B> {
    fn clone(&self) -> Self {
        Reopen {
            make: self.make.clone(),
        }
    }
}

impl<B> fmt::Debug for Reopen<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reopen").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
