//! A three-member etcd cluster on loopback ports in a temporary directory,
//! from the `etcd` binary of Debian's `etcd-server` package (or
//! `PBPERSIST_ETCD_BIN`), for the etcd storage's tests and benchmarks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The etcd binary to run.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("PBPERSIST_ETCD_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("etcd"))
}

/// Why no cluster can start here, if none can: the binary is missing.
pub fn etcd_available() -> Result<(), String> {
    let binary = etcd_binary();
    match Command::new(&binary).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!("{} cannot run (install Debian's etcd-server)", binary.display())),
    }
}

/// One member: its ports and, while it runs, its process.
#[derive(Debug)]
struct Member {
    name: String,
    client: u16,
    peer: u16,
    process: Mutex<Option<Child>>,
}

/// A running cluster; dropping it (or [`stop`](Cluster::stop)) stops every
/// member and removes the data. A cluster in a `static` is never dropped:
/// stop it before the process exits, or its members outlive the process.
#[derive(Debug)]
pub struct Cluster {
    /// Whether clients must use TLS with a client certificate.
    tls: bool,
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl Cluster {
    /// Starts `n` members and waits until each answers on its client port.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, false)
    }

    /// Starts `n` members that serve clients over TLS only and require a
    /// client certificate, with a CA, server and client certificates made
    /// by `openssl` in the cluster's directory.
    pub fn start_tls(n: usize) -> Cluster {
        Self::start_with(n, true)
    }

    fn start_with(n: usize, tls: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if tls {
            make_certificates(dir.path());
        }
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                process: Mutex::new(None),
            })
            .collect();
        let cluster = Cluster { tls, dir, members };
        for i in 0..n {
            cluster.spawn(i, "new");
        }
        for i in 0..n {
            cluster.wait_ready(i);
        }
        cluster
    }

    fn initial_cluster(&self) -> String {
        self.members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect::<Vec<_>>().join(",")
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn spawn(&self, i: usize, state: &str) {
        let (initial, data) = (self.initial_cluster(), self.data_dir(i));
        let m = &self.members[i];
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name))).expect("a log file");
        let scheme = if self.tls { "https" } else { "http" };
        let mut command = Command::new(etcd_binary());
        if self.tls {
            let file = |name: &str| self.dir.path().join(name);
            command.arg("--cert-file").arg(file("server.pem")).arg("--key-file").arg(file("server.key"));
            command.arg("--trusted-ca-file").arg(file("ca.pem")).arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &format!("{scheme}://127.0.0.1:{}", m.client)])
            .args(["--advertise-client-urls", &format!("{scheme}://127.0.0.1:{}", m.client)])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{}", m.peer)])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{}", m.peer)])
            .args(["--initial-cluster", &initial, "--initial-cluster-state", state])
            .args(["--initial-cluster-token", "pbpersist-test"])
            // Room for commits of thousands of objects (see docs/etcd.md).
            .args(["--max-txn-ops", "10000", "--max-request-bytes", "16777216"])
            .args(["--quota-backend-bytes", "4294967296", "--logger", "zap", "--log-outputs", "stderr"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        *self.process(i) = Some(child);
    }

    /// Waits until member `i` accepts connections on its client port.
    fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = format!("127.0.0.1:{}", self.members[i].client);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "etcd member {i} did not start; see {}", self.log(i).display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Member `i`'s log file.
    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    /// The client endpoints, `127.0.0.1:port` each.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("127.0.0.1:{}", m.client)).collect()
    }

    /// An `etcd://` URL for the whole cluster under `prefix`, telling the
    /// storage the limits the members run with.
    pub fn url(&self, prefix: &str) -> String {
        Self::url_for(&self.endpoints(), prefix)
    }

    /// An `etcd://` URL for member `i` alone under `prefix`.
    pub fn member_url(&self, i: usize, prefix: &str) -> String {
        Self::url_for(&[format!("127.0.0.1:{}", self.members[i].client)], prefix)
    }

    /// An `etcd://` URL for the whole cluster under `prefix` with the TLS
    /// files of a cluster from [`start_tls`](Cluster::start_tls).
    pub fn tls_url(&self, prefix: &str) -> String {
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        format!(
            "{}&tls-ca={}&tls-cert={}&tls-key={}",
            self.url(prefix),
            file("ca.pem"),
            file("client.pem"),
            file("client.key")
        )
    }

    fn url_for(endpoints: &[String], prefix: &str) -> String {
        format!("etcd://{}/{prefix}?max-txn-ops=10000&max-request-bytes=16777216", endpoints.join(","))
    }

    /// The index of the member that is the Raft leader, asked of the
    /// running members.
    #[cfg(feature = "etcd")]
    pub fn leader(&self) -> Option<usize> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        for (i, m) in self.members.iter().enumerate().filter(|(i, _)| self.process(*i).is_some()) {
            let endpoint = format!("http://127.0.0.1:{}", m.client);
            let status = runtime.block_on(async {
                let options = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(2));
                let mut client = etcd_client::Client::connect([endpoint], Some(options)).await?;
                client.status().await
            });
            if let Ok(s) = status
                && s.header().is_some_and(|h| h.member_id() == s.leader())
            {
                return Some(i);
            }
        }
        None
    }

    fn process(&self, i: usize) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.members[i].process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with a client connected to every running member, on a
    /// runtime of its own: for administration the storage does not do
    /// (compaction, users, authentication).
    #[cfg(feature = "etcd")]
    pub fn admin<T>(
        &self,
        f: impl AsyncFnOnce(&mut etcd_client::Client) -> Result<T, etcd_client::Error>,
    ) -> Result<T, etcd_client::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let endpoints: Vec<String> = self.endpoints().iter().map(|e| format!("http://{e}")).collect();
        runtime.block_on(async {
            let mut client = etcd_client::Client::connect(endpoints, None).await?;
            f(&mut client).await
        })
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&self, i: usize) {
        if let Some(mut p) = self.process(i).take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Kills every member.
    pub fn stop(&self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Restarts member `i` on its data directory, as after a crash.
    pub fn restart(&self, i: usize) {
        self.kill(i);
        self.spawn(i, "existing");
        self.wait_ready(i);
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A CA, and server (for 127.0.0.1) and client certificates it signed:
/// `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key` in `dir`.
pub fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "openssl {args:?} failed");
    };
    let days = ["-days", "2"];
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=pbpersist test CA",
        days[0],
        days[1],
    ]);
    // Extensions make version 3 certificates, the only version rustls takes.
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        .expect("a file");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("a file");
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        let mut sign =
            vec!["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem];
        sign.extend(days);
        sign.extend(["-extfile", ext]);
        openssl(&sign);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
