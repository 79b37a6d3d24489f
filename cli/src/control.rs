//! The control channel between `sheaf serve` and the other commands of the same data
//! directory: a Unix domain socket `DIR/control.sock` speaking newline-delimited JSON.
//!
//! A client connects, writes one [`Request`] line and reads [`Reply`] lines: any number of
//! progress and event lines, then exactly one `result` or `error` line, after which the
//! server closes the connection. For `doc watch` the server streams event lines until the
//! client disconnects. The client keeps its sending half open while it waits: the server
//! treats end-of-input as the client going away and cancels a running watch.
//!
//! Without Unix domain sockets (non-unix platforms) there is no control channel:
//! [`connect`] finds no node and [`listen`] serves nothing, so commands open the store
//! themselves.

use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[cfg(unix)]
use crate::commands::{execute, Host};
use crate::{
    commands::{Request, Update},
    node::Node,
    output::{Bar, Output, Printer},
    CliError, Result,
};

/// Largest request line the server reads.
#[cfg(unix)]
const MAX_REQUEST: u64 = 1 << 20;

/// A line from the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Progress or an event.
    Update {
        /// It.
        update: Update,
    },
    /// The request's result; the last line.
    Result {
        /// It.
        output: Output,
    },
    /// The request failed; the last line.
    Error {
        /// Why, as one line.
        message: String,
    },
}

/// The socket path of a data directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// The running control server; [`Control::stop`] ends it and removes the socket.
#[derive(Debug)]
pub struct Control {
    #[cfg(unix)]
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Control {
    /// Stops accepting, ends all connections and removes the socket file.
    pub fn stop(self) {
        #[cfg(unix)]
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The socket's stream type.
#[cfg(unix)]
pub type Stream = tokio::net::UnixStream;
/// The socket's stream type (none on this platform).
#[cfg(not(unix))]
pub type Stream = std::convert::Infallible;

/// Connects to the node serving `dir`, if one answers.
pub async fn connect(dir: &Path) -> Option<Stream> {
    #[cfg(unix)]
    {
        tokio::net::UnixStream::connect(socket_path(dir)).await.ok()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Sends `request`, renders progress and events as they come, returns the result.
#[cfg(unix)]
pub async fn call(
    stream: Stream,
    request: &Request,
    printer: Printer,
    bar: &mut Bar,
) -> Result<Output> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(request).map_err(CliError::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let reply: Reply = serde_json::from_str(&line)
            .map_err(|e| CliError::Control(format!("bad reply from the node: {e}")))?;
        match reply {
            Reply::Update {
                update: Update::Progress(p),
            } => bar.update(&p),
            Reply::Update {
                update: Update::Event(e),
            } => printer.event(&e),
            Reply::Update {
                update: Update::Watching { doc },
            } => printer.watching(&doc),
            Reply::Result { output } => {
                bar.finish();
                return Ok(output);
            }
            Reply::Error { message } => {
                bar.finish();
                return Err(CliError::Other(message));
            }
        }
    }
    // Keep the sending half alive until here, so the server does not see us leave.
    drop(write);
    Err(CliError::Control(
        "the node closed the connection without an answer".into(),
    ))
}

/// Sends `request` (no control channel on this platform).
#[cfg(not(unix))]
pub async fn call(
    stream: Stream,
    _request: &Request,
    _printer: Printer,
    _bar: &mut Bar,
) -> Result<Output> {
    match stream {}
}

/// Starts serving requests for `node` on `DIR/control.sock`. The caller holds the data
/// directory's lock, so a socket file left there is stale and is replaced.
#[cfg(unix)]
pub fn listen(dir: &Path, node: Arc<Node>) -> Result<Control> {
    let path = socket_path(dir);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| CliError::Control(format!("cannot listen on {}: {e}", path.display())))?;
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    // Accept errors (e.g. out of file descriptors) are transient: keep serving.
                    if let Ok((stream, _)) = accepted {
                        connections.spawn(handle(stream, node.clone()));
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Control { task, path })
}

/// Starts serving requests (no control channel on this platform).
#[cfg(not(unix))]
pub fn listen(dir: &Path, node: std::sync::Arc<Node>) -> Result<Control> {
    let _ = node;
    Ok(Control {
        path: socket_path(dir),
    })
}

#[cfg(unix)]
async fn handle(stream: tokio::net::UnixStream, node: Arc<Node>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read.take(MAX_REQUEST));
    let mut line = String::new();
    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            let reply = Reply::Error {
                message: format!("bad request: {e}"),
            };
            let _ = write_reply(&mut write, &reply).await;
            return;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let run = async {
        let result = execute(&node, Host::Served, request, &tx).await;
        drop(tx);
        result
    };
    let forward = async {
        while let Some(update) = rx.recv().await {
            if write_reply(&mut write, &Reply::Update { update })
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    };
    let gone = async {
        // The client never sends more than its request: end of input means it left.
        let mut buf = [0u8; 64];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let (result, writable) = tokio::select! {
        both = async { tokio::join!(run, forward) } => both,
        _ = gone => return,
    };
    if !writable {
        return;
    }
    let reply = match result {
        Ok(output) => Reply::Result { output },
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    };
    let _ = write_reply(&mut write, &reply).await;
    let _ = write.shutdown().await;
}

#[cfg(unix)]
async fn write_reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        args::Mode,
        output::{EntryInfo, Progress},
    };

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        let line = serde_json::to_string(value).unwrap();
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn requests_and_replies_are_single_json_lines() {
        let requests = [
            Request::DocNew,
            Request::DocLs {
                doc: "ab".into(),
                prefix: Some(crate::keys::Key(vec![0xff])),
                all: true,
                include_empty: true,
            },
            Request::DocShare {
                doc: "ab".into(),
                mode: Mode::Write,
                addr: crate::args::AddrMode::Relay,
            },
            Request::DocSet {
                doc: "ab".into(),
                key: crate::keys::Key(vec![b'k', b'\n', 0, 0xff]),
                value: Some("v".into()),
                file: None,
            },
        ];
        for r in &requests {
            let back = round_trip(r);
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
        let entry = EntryInfo::new(&[0x01, 0xff, 0x00], "a".into(), "h".into(), 3, 1);
        let replies = [
            Reply::Update {
                update: Update::Progress(Progress {
                    what: "import".into(),
                    pos: 1,
                    len: Some(2),
                }),
            },
            Reply::Result {
                output: Output::Value {
                    entry,
                    content_hex: Some(hex::encode([0u8, 255, 10])),
                    out: None,
                },
            },
            Reply::Error {
                message: "unknown document x".into(),
            },
        ];
        for r in &replies {
            let back = round_trip(r);
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for line in ["", "{}", "{\"op\":\"nope\"}", "[1,2]", "\u{0}"] {
            assert!(serde_json::from_str::<Request>(line).is_err());
        }
    }
}
