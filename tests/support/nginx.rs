//! A real nginx on a loopback port, in a directory of its own, for interop tests.
//!
//! `.ci/run` installs Debian's nginx-light where it can; without nginx, [`Nginx::start`]
//! says the test was skipped and returns `None`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::programs;

/// A running nginx; killed, and its directory removed, when dropped.
pub struct Nginx {
    child: Child,
    /// Its directory: configuration, logs, temporary files, and whatever a test serves.
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    /// Starts nginx with the `http` block's `directives` (`keepalive_requests 100;`) and
    /// the `server` block's, `server` given the port and the directory; `name` tells its
    /// directory apart from other tests'. `prepare` runs on the directory first (to write
    /// the files it serves).
    pub async fn start(
        name: &str,
        directives: &str,
        server: impl FnOnce(u16, &Path) -> String,
        prepare: impl FnOnce(&Path),
    ) -> Option<Nginx> {
        let nginx = programs::nginx()?;
        let dir = std::env::temp_dir().join(format!(
            "retryable-http-nginx-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        // NOTE: nginx takes a port, not a listener: the OS picks a free one, which is
        // released just before nginx binds it.
        let port = free_port();
        let d = dir.display();
        let server = server(port, &dir);
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {directives}
    server {{
        {server}
    }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let running = Nginx { child, dir, port };
        if listening(port).await {
            return Some(running);
        }
        panic!(
            "nginx did not start listening on port {port}: {}",
            running.error_log()
        );
    }

    /// What nginx logged.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on `port` within 5 s.
pub async fn listening(port: u16) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
