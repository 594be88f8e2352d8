//! An S3-protocol server for the object-store storage's tests: `moto`'s
//! server from PyPI, on a loopback port, with a bucket made for the tests.
//! It runs through `tests/s3/serial_moto.py`, which handles one request at
//! a time, because moto's create-if-absent is not atomic under concurrent
//! requests. The Python is `PBPERSIST_MOTO_PYTHON`, else
//! `target/s3-venv/bin/python` (where `.ci/run` installs moto), else
//! `python3` on the PATH.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Python that has moto.
pub fn moto_python() -> PathBuf {
    if let Some(p) = std::env::var_os("PBPERSIST_MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/s3-venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("s3/serial_moto.py")
}

/// Why no server can start here, if none can.
pub fn moto_available() -> Result<(), String> {
    let python = moto_python();
    let probe = Command::new(&python).args(["-c", "import moto.server, werkzeug"]).stderr(Stdio::null()).status();
    match probe {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!("{} cannot import moto (pip install 'moto[server]')", python.display())),
    }
}

/// A running server; [`stop`](S3Server::stop) ends it. One in a `static`
/// is never dropped: stop it before the process exits.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    process: Mutex<Option<Child>>,
}

/// The bucket every test database lives in, under a prefix of its own.
pub const BUCKET: &str = "pbpersist-tests";

impl S3Server {
    /// Starts the server, waits until it answers, and creates [`BUCKET`].
    /// A server that exits, or does not answer within 30 seconds, is an
    /// error naming why (its last lines of output), so that a test can
    /// report itself skipped instead of failing on a broken installation.
    pub fn start() -> Result<S3Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no loopback port for moto: {e}"))?;
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("no file for moto's output: {e}"))?;
        let output = log.reopen().map_err(|e| format!("no file for moto's output: {e}"))?;
        let python = moto_python();
        let child = Command::new(&python)
            .arg(launcher())
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .map_err(|e| format!("{} cannot start: {e}", python.display()))?;
        let server = S3Server { port, process: Mutex::new(Some(child)) };
        let tail = || {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().rev().take(3).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.process.lock().unwrap().as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("moto's server ({}) exited with {status}: {}", python.display(), tail()));
            }
            match server.request("PUT", &format!("/{BUCKET}")) {
                Ok(status) if status < 300 => return Ok(server),
                other if Instant::now() > deadline => {
                    return Err(format!("moto's server never created the bucket ({other:?}): {}", tail()));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Sends an unsigned request with no body and returns the status.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        reply.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other(reply.clone()))
    }

    /// The endpoint, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `AWS_*` variables that point the storage at this server, with
    /// the made-up credentials moto accepts: for a test's `main` to set
    /// before it starts any thread.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The URL of a database under `prefix` in the test bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Stops the server.
    pub fn stop(&self) {
        if let Some(mut child) = self.process.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
