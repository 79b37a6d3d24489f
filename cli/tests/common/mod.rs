//! Running the `sheaf` binary in tests: one-shot commands and `serve` processes, with
//! deadlines on everything.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// How long a test waits for a process or a condition.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The `sheaf` command, `--offline` (direct loopback addresses only: no relay, no
/// discovery, no port mapping, so nothing leaves the machine), with backtraces enabled
/// (none may ever show).
pub fn sheaf() -> Command {
    let mut cmd = sheaf_networked();
    cmd.arg("--offline");
    cmd
}

/// The `sheaf` command without `--offline`: the caller names its relay and turns
/// discovery and port mapping off, so that nothing leaves the machine.
pub fn sheaf_networked() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sheaf"));
    cmd.env_remove("SHEAF_DATA")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs `sheaf --data DIR ARGS...` to completion (at most [`TIMEOUT`]).
pub fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = sheaf();
    cmd.arg("--data").arg(dir).args(args);
    run_cmd(cmd)
}

/// Runs `cmd` to completion (at most [`TIMEOUT`]), capturing its output.
pub fn run_cmd(cmd: Command) -> Output {
    run_cmd_within(cmd, TIMEOUT)
}

/// Runs `cmd` to completion (at most `limit`), capturing its output.
pub fn run_cmd_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn sheaf");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for sheaf"),
        Err(_) => {
            dump_stacks(id);
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("sheaf {cmd:?} did not finish within {limit:?}");
        }
    }
}

/// Prints the thread stacks of a hung process to stderr, when `gdb` is installed, so that a
/// timeout in CI shows where the process was stuck.
pub fn dump_stacks(pid: u32) {
    let out = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => eprintln!(
            "stacks of pid {pid}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => eprintln!("no stacks of pid {pid} (gdb: {e})"),
    }
}

/// Runs a command that must succeed; returns its stdout, trimmed.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "sheaf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Asserts a failure with exit code 1 and exactly one non-empty stderr line, an `error: `
/// line containing `needle`, and no trace of a panic.
pub fn assert_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(lines[0].contains(needle), "{stderr:?} lacks {needle:?}");
    let lower = stderr.to_lowercase();
    assert!(!lower.contains("panicked"), "{stderr:?}");
    assert!(!lower.contains("backtrace"), "{stderr:?}");
}

/// A running process whose stdout lines arrive on a channel; killed when dropped.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Spawns `cmd` with stdout piped (stderr inherited, so failures show in test logs).
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn sheaf");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most [`TIMEOUT`]) for a stdout line matching `pred`.
    pub fn wait_line(&mut self, mut pred: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.next_line(deadline) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no matching line ({e}); saw {:?}", self.seen),
            }
        }
    }

    /// The next stdout line, waiting until `deadline` at most.
    fn next_line(&mut self, deadline: Instant) -> Result<String, mpsc::RecvTimeoutError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(left)?;
        self.seen.push(line.clone());
        Ok(line)
    }

    /// Sends SIGTERM and waits for the exit; a process still running after [`TIMEOUT`] is
    /// killed by a watchdog, which makes its status unsuccessful.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let (exited, watchdog) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if watchdog.recv_timeout(TIMEOUT).is_err() {
                eprintln!("sheaf did not stop on SIGTERM within {TIMEOUT:?}; killing it");
                if let Ok(id) = pid.parse() {
                    dump_stacks(id);
                }
                let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
            }
        });
        let status = self.child.wait().expect("wait");
        let _ = exited.send(());
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sheaf doc watch DOC` on a serving node: the document's live events, which tests wait on
/// before re-checking a condition on the store.
pub struct Watch {
    proc: Proc,
}

impl Watch {
    /// Starts watching `doc` on the `serve` of `dir` and waits until the subscription holds.
    pub fn start(dir: &Path, doc: &str) -> Watch {
        let mut cmd = sheaf();
        cmd.arg("--data").arg(dir);
        Self::start_with(cmd, doc)
    }

    /// Like [`Watch::start`], with a `sheaf` command (and its options) of the caller's.
    pub fn start_with(mut cmd: Command, doc: &str) -> Watch {
        cmd.args(["--json", "doc", "watch", doc]);
        let mut proc = Proc::spawn(cmd);
        proc.wait_line(|l| l.contains("\"watching\""));
        Watch { proc }
    }

    /// Checks `check` now and again after each event of the document, until it returns
    /// `Some`; fails if that takes longer than [`TIMEOUT`]. Every change to the document's
    /// entries or content is an event, so none is missed.
    pub fn until<T>(&mut self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if let Err(e) = self.proc.next_line(deadline) {
                panic!(
                    "timed out waiting for {what} ({e}); events: {:?}",
                    self.proc.seen
                );
            }
        }
    }
}

/// A `sheaf serve` on loopback.
pub struct Serve {
    /// The process.
    pub proc: Proc,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its node id.
    pub node_id: String,
}

impl Serve {
    /// Starts `sheaf --data DIR serve --bind 127.0.0.1:0` and waits until it is ready.
    pub fn start(dir: &Path) -> Serve {
        let mut cmd = sheaf();
        cmd.arg("--data")
            .arg(dir)
            .args(["serve", "--bind", "127.0.0.1:0"]);
        let mut proc = Proc::spawn(cmd);
        let node = proc.wait_line(|l| l.starts_with("node "));
        proc.wait_line(|l| l == "ready");
        Serve {
            proc,
            dir: dir.to_path_buf(),
            node_id: node["node ".len()..].to_string(),
        }
    }
}

impl Serve {
    /// Starts `sheaf --data DIR serve --bind BIND` and waits until it is ready.
    pub fn start_on(dir: &Path, bind: &str) -> Serve {
        Self::start_with(dir, &["--bind", bind])
    }

    /// Starts `sheaf --data DIR serve` without `--bind` (on the port it remembers) and waits
    /// until it is ready.
    pub fn start_unbound(dir: &Path) -> Serve {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &Path, args: &[&str]) -> Serve {
        let mut cmd = sheaf();
        cmd.arg("--data").arg(dir).arg("serve").args(args);
        let mut proc = Proc::spawn(cmd);
        let node = proc.wait_line(|l| l.starts_with("node "));
        proc.wait_line(|l| l == "ready");
        Serve {
            proc,
            dir: dir.to_path_buf(),
            node_id: node["node ".len()..].to_string(),
        }
    }
}

/// A loopback UDP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}
