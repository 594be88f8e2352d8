//! A TCP proxy between the client and PostgreSQL that can break the
//! connection around a `COMMIT`, to test commits whose outcome is lost.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// The simple-query message `COMMIT`: tag, length (4 + 7), text, NUL.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// What the proxy does with the next `COMMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forwards everything.
    Pass = 0,
    /// Breaks the connection before the `COMMIT` reaches the server.
    DropCommit = 1,
    /// Forwards the `COMMIT` and breaks the connection before the reply.
    DropReply = 2,
}

/// A proxy listening on a local port.
pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    pub fn start(server: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let shared = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect((server.0.as_str(), server.1)) else { return };
                relay(client, upstream, shared.clone());
            }
        });
        Proxy { port, mode }
    }

    /// Sets what happens to the next `COMMIT` on any connection.
    pub fn arm(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

fn relay(client: TcpStream, upstream: TcpStream, mode: Arc<AtomicU8>) {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut c_in, mut c_out) = (client.try_clone().unwrap(), client);
    let (mut u_in, mut u_out) = (upstream.try_clone().unwrap(), upstream);
    let cut_reply = cut.clone();
    let client_side = c_out.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n) = c_in.read(&mut buf) {
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if chunk.windows(COMMIT.len()).any(|w| w == COMMIT) {
                match mode.swap(Mode::Pass as u8, Ordering::SeqCst) {
                    1 => break,
                    2 => {
                        cut.store(true, Ordering::SeqCst);
                        let _ = u_out.write_all(chunk);
                        // Give the server time to commit before cutting.
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        break;
                    }
                    _ => {}
                }
            }
            if u_out.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = u_out.shutdown(Shutdown::Both);
        let _ = client_side.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n) = u_in.read(&mut buf) {
            if n == 0 || cut_reply.load(Ordering::SeqCst) || c_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_out.shutdown(Shutdown::Both);
    });
}
