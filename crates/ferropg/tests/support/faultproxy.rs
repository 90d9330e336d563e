//! A TCP fault proxy for the fault-injection tests (the Rust twin of
//! `tests/faultproxy.py`): it stands between a client and a real server and, on
//! command, breaks the link the ways networks break.
//!
//! It runs on a thread of its own with its own runtime, so it keeps forwarding
//! whatever the test's runtime is doing.
//!
//! Modes ([`FaultProxy::set_mode`], for open and new connections alike):
//! [`Mode::Pass`] forwards; [`Mode::Blackhole`] stops forwarding in both directions
//! without FIN or RST (new connections are accepted, then hear nothing);
//! [`Mode::Bytewise`] forwards one byte per write; [`Mode::Delay`] forwards each
//! chunk after a pause. Once, on every open connection: [`FaultProxy::reset`] cuts
//! with RST, [`FaultProxy::half_close`] sends FIN to the client.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::listener::ListenerThread;

/// How the proxy treats the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Bytewise,
    Delay(Duration),
}

/// A one-shot action on every open link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    None,
    Reset,
    HalfClose,
}

/// The proxy; dropped, it stops and closes every link.
pub struct FaultProxy {
    listener: ListenerThread,
    mode: watch::Sender<Mode>,
    cut: watch::Sender<(u64, Cut)>,
    cuts: Mutex<u64>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `target`.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let (mode_tx, mode_rx) = watch::channel(Mode::Pass);
        let (cut_tx, cut_rx) = watch::channel((0, Cut::None));
        let listener = ListenerThread::start(move |client| {
            link(client, target, mode_rx.clone(), cut_rx.clone())
        });
        FaultProxy {
            listener,
            mode: mode_tx,
            cut: cut_tx,
            cuts: Mutex::new(0),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Switches every link, open or new, to `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Cuts every open link with RST, on both sides.
    pub fn reset(&self) {
        self.send_cut(Cut::Reset);
    }

    /// Sends FIN to every open link's client.
    pub fn half_close(&self) {
        self.send_cut(Cut::HalfClose);
    }

    fn send_cut(&self, cut: Cut) {
        let mut n = self.cuts.lock().unwrap();
        *n += 1;
        self.cut.send_replace((*n, cut));
        drop(n);
        // Give the links a moment to act on it.
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The links go first; the listener stops as it is dropped.
        self.mode.send_replace(Mode::Pass);
        self.send_cut(Cut::Reset);
    }
}

async fn link(
    client: TcpStream,
    target: SocketAddr,
    mode: watch::Receiver<Mode>,
    mut cut: watch::Receiver<(u64, Cut)>,
) {
    cut.borrow_and_update();
    if *mode.borrow() == Mode::Blackhole {
        // Accepted, then silence: the server is never reached.
        let mut mode = mode.clone();
        let _ = mode.wait_for(|m| *m != Mode::Blackhole).await;
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = tokio::spawn(pump(client_r, server_w, mode.clone(), cut.clone(), false));
    let down = tokio::spawn(pump(server_r, client_w, mode, cut, true));
    let _ = tokio::join!(up, down);
}

/// Forwards `from` to `to` under the current mode until either side ends or a cut
/// ends the link; `to_client` marks the server-to-client direction (the one a half
/// close ends).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    mut cut: watch::Receiver<(u64, Cut)>,
    to_client: bool,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                let what = cut.borrow_and_update().1;
                match what {
                    Cut::Reset => {
                        // Linger 0: dropping the sockets sends RST, not FIN.
                        let _ = from.as_ref().set_zero_linger();
                        let _ = to.as_ref().set_zero_linger();
                        return;
                    }
                    Cut::HalfClose if to_client => {
                        let _ = to.shutdown().await;
                        return;
                    }
                    _ => continue,
                }
            }
        };
        if mode.wait_for(|m| *m != Mode::Blackhole).await.is_err() {
            return;
        }
        let current = *mode.borrow();
        let written = match current {
            Mode::Delay(d) => {
                tokio::time::sleep(d).await;
                to.write_all(&buf[..n]).await
            }
            Mode::Bytewise => {
                let mut result = Ok(());
                for b in &buf[..n] {
                    result = to.write_all(std::slice::from_ref(b)).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            _ => to.write_all(&buf[..n]).await,
        };
        if written.is_err() {
            return;
        }
    }
}
