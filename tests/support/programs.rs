//! Other programs run by tests: this crate's examples, and mitmproxy's `mitmdump`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The path of a built example of this crate (cargo builds them before running tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with --all-features",
        path.display()
    );
    path
}

/// A program running in the background; it is killed when dropped.
#[derive(Debug)]
pub struct Program {
    _child: Child,
    /// The line it printed that said it was ready.
    pub ready: String,
    /// Everything it printed on stdout since.
    pub output: Arc<Mutex<Vec<String>>>,
}

/// Starts `command` and waits (up to 30 s) for a stdout line that contains `ready`.
pub async fn start(mut command: Command, ready: &str) -> Program {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the program starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let wait = async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.contains(ready) => return line,
                Ok(Some(_)) => continue,
                other => panic!("the program ended before saying {ready:?}: {other:?}"),
            }
        }
    };
    let line = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no {ready:?} within 30 s"));
    let output: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Program {
        _child: child,
        ready: line,
        output,
    }
}

/// The `host:port` at the end of a line such as `... listening at 127.0.0.1:8080.`
pub fn address_in(line: &str) -> String {
    let word = line
        .split_whitespace()
        .last()
        .expect("a line with words")
        .trim_end_matches('.');
    word.trim_start_matches("http://").to_owned()
}

/// The `mitmdump` to test against: `$MITMDUMP`, or `mitmdump` on the `PATH`. Without one,
/// `None`, and in CI (`CI=true`) a failure.
pub fn mitmdump() -> Option<PathBuf> {
    let found = find("MITMDUMP", "mitmdump");
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mitmdump not found in CI: .ci/run installs it and sets MITMDUMP"
        );
        skipped("mitmdump not found (install mitmproxy==11.0.2 or set MITMDUMP)");
    }
    found
}

/// The `nginx` to test against: `$NGINX_BIN`, `nginx` on the `PATH`, or `/usr/sbin/nginx`.
/// Without one, `None`: `.ci/run` installs Debian's nginx-light where it can, and the tests
/// say they were skipped where it could not.
pub fn nginx() -> Option<PathBuf> {
    let found = find("NGINX_BIN", "nginx").or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.exists().then_some(sbin)
    });
    if found.is_none() {
        skipped("nginx not found (apt-get install nginx-light, or set NGINX_BIN)");
    }
    found
}

/// Python 3 (for its `http.server`, which ignores `Range`): `python3` on the `PATH`. The
/// machine CI runs on always has it.
pub fn python() -> Option<PathBuf> {
    let found = find("PYTHON", "python3");
    if found.is_none() {
        skipped("python3 not found");
    }
    found
}

/// `$var` if it names a file, or `name` on the `PATH`.
fn find(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.exists())
            })
        })
}

/// Says that a test was skipped, straight to stderr, past the test harness's capture.
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
