//! The trace: every input and output of every node, in order, hashed (and optionally written
//! out).
//!
//! Each record is `time node direction Debug-of-the-value`, fed to one BLAKE3 hasher. `Debug`
//! is a canonical enough encoding here: every type that crosses a node boundary derives it,
//! none holds a pointer or a hash-ordered collection, so two runs of the same seed — in one
//! process or two — produce byte-identical records exactly when they behave identically.
//! Byte payloads (sync frames, gossip contents) are fed to the hasher raw rather than
//! formatted as lists of numbers, which would dominate the cost of a run.

use std::{
    fmt::{self, Write as _},
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

use sheaf_core::live::{GossipEvent, Input, Output};

/// Feeds formatted text straight into the hasher (and the trace file, if any).
struct Sink<'a> {
    hasher: &'a mut blake3::Hasher,
    file: Option<&'a mut BufWriter<File>>,
    error: &'a mut Option<std::io::Error>,
}

impl fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.hasher.update(s.as_bytes());
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(s.as_bytes()) {
                self.error.get_or_insert(e);
            }
        }
        Ok(())
    }
}

/// The running trace of one simulation.
pub struct Trace {
    hasher: blake3::Hasher,
    file: Option<BufWriter<File>>,
    error: Option<std::io::Error>,
    records: u64,
}

impl Trace {
    /// A trace that is only hashed.
    pub fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            file: None,
            error: None,
            records: 0,
        }
    }

    /// A trace that is also written to `path`, one record per line.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let mut t = Self::new();
        t.file = Some(BufWriter::new(File::create(path)?));
        Ok(t)
    }

    /// Appends a record.
    pub fn record(&mut self, time: u64, node: usize, dir: &str, value: &dyn fmt::Debug) {
        self.records += 1;
        let mut sink = Sink {
            hasher: &mut self.hasher,
            file: self.file.as_mut(),
            error: &mut self.error,
        };
        let _ = writeln!(sink, "{time} n{node} {dir} {value:?}");
    }

    /// Appends a record whose bulky byte payload is hashed raw (and shown in the file as its
    /// length and a short hash) instead of being formatted.
    pub fn record_payload(
        &mut self,
        time: u64,
        node: usize,
        dir: &str,
        header: &dyn fmt::Debug,
        payload: &[u8],
    ) {
        self.records += 1;
        self.hasher.update(payload);
        let digest = blake3::hash(payload);
        let mut sink = Sink {
            hasher: &mut self.hasher,
            file: self.file.as_mut(),
            error: &mut self.error,
        };
        let short = &digest.to_hex()[..10];
        let _ = writeln!(
            sink,
            "{time} n{node} {dir} {header:?} <{}b {short}>",
            payload.len()
        );
    }

    /// Records a `Live` input, with byte payloads hashed raw.
    pub fn input(&mut self, time: u64, node: usize, input: &Input) {
        match input {
            Input::SyncData { session, bytes } => self.record_payload(
                time,
                node,
                "in",
                &format_args!("SyncData {{ session: {session:?} }}"),
                bytes,
            ),
            Input::Gossip {
                namespace,
                event:
                    GossipEvent::Received {
                        content,
                        delivered_from,
                        direct,
                    },
            } => self.record_payload(
                time,
                node,
                "in",
                &format_args!(
                    "Gossip {{ namespace: {namespace:?}, Received {{ delivered_from: {delivered_from:?}, direct: {direct} }} }}"
                ),
                content,
            ),
            _ => self.record(time, node, "in", input),
        }
    }

    /// Records a `Live` output, with byte payloads hashed raw.
    pub fn output(&mut self, time: u64, node: usize, output: &Output) {
        match output {
            Output::SyncSend { session, bytes } => self.record_payload(
                time,
                node,
                "out",
                &format_args!("SyncSend {{ session: {session:?} }}"),
                bytes,
            ),
            Output::GossipBroadcast {
                namespace,
                scope,
                payload,
            } => self.record_payload(
                time,
                node,
                "out",
                &format_args!("GossipBroadcast {{ namespace: {namespace:?}, scope: {scope:?} }}"),
                payload,
            ),
            _ => self.record(time, node, "out", output),
        }
    }

    /// Appends a free-form line (faults, phases).
    pub fn note(&mut self, time: u64, text: &str) {
        self.record(time, usize::MAX, "note", &format_args!("{text}"));
    }

    /// Records so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The hash of everything so far, hex.
    pub fn hash(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Flushes the file; reports the first write error, if any.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}
