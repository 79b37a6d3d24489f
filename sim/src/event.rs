//! The vocabulary of the event queue: [`Event`]s, the store executor's [`Job`]s and the
//! per-node [`Work`] list (see [`crate::world`] for how they are run).

use iroh_gossip::proto::topic;
use sheaf_core::{
    hash::{Hash, PeerId},
    keys::NamespaceId,
    live::{ApiCommand, Input, StoreRequestId},
    replica::{StoreCommand, V2Command, V2Response},
    SignedEntry,
};

use crate::{byzantine::ByzEvent, gossip::Pi, net::StreamItem, v2::V2Item};

/// A job for a node's store executor.
#[derive(Debug)]
pub enum Job {
    /// A command from `Live`, answered with a `StoreReply`.
    Live {
        /// Echoed in the reply.
        request: StoreRequestId,
        /// The command.
        command: StoreCommand,
    },
    /// A command from the (simulated) API: a workload write.
    Api(StoreCommand),
    /// A raw store write that bypasses the executor's semantics (planted bug only).
    RawPut(SignedEntry),
    /// A store command of one end of a sync v2 connection.
    V2 {
        /// Connection.
        conn: u64,
        /// Which end (0 dialer, 1 acceptor).
        end: usize,
        /// The command.
        command: V2Command,
    },
}

/// Work for one node at the current instant.
#[derive(Debug)]
pub enum Work {
    /// An input for `Live`.
    Live(Input),
    /// `Live`'s timers are due.
    LiveTimeout,
    /// An input for the gossip state of a topic.
    Gossip(NamespaceId, topic::InEvent<Pi>),
    /// The store's answer to a sync v2 end's command.
    V2Store {
        /// Connection.
        conn: u64,
        /// Which end.
        end: usize,
        /// The answer.
        result: Result<V2Response, String>,
    },
}

/// Everything that can happen.
#[derive(Debug)]
pub enum Event {
    /// The next workload operation.
    Op,
    /// An API command for a node.
    Api {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// Command.
        command: ApiCommand,
    },
    /// A delayed input for a node's `Live`.
    Input {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// Input.
        input: Box<Input>,
    },
    /// A node's `Live` timer.
    LiveTimer {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// The time it was scheduled for.
        at: u64,
    },
    /// The node's store executor finishes its next command.
    StoreExec {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
    },
    /// The node's store executor commits.
    StoreCommit {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
    },
    /// A gossip message arrives.
    GossipMsg {
        /// Receiver.
        to: usize,
        /// Receiver's incarnation.
        epoch: u32,
        /// Topic.
        ns: NamespaceId,
        /// Sender.
        from: usize,
        /// postcard-encoded `topic::Message`.
        bytes: Vec<u8>,
    },
    /// A gossip timer.
    GossipTimer {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// Topic.
        ns: NamespaceId,
        /// Generation of the topic state that set it.
        generation: u64,
        /// Timer.
        timer: topic::Timer<Pi>,
    },
    /// A gossip connection to `peer` is gone.
    GossipDown {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// Topic.
        ns: NamespaceId,
        /// The peer.
        peer: usize,
    },
    /// Something arrives on one end of a sync connection.
    Stream {
        /// Connection.
        conn: u64,
        /// Receiving end (0 dialer, 1 acceptor).
        to: usize,
        /// What.
        item: StreamItem,
    },
    /// Something arrives on one end of a sync v2 connection.
    V2 {
        /// Connection.
        conn: u64,
        /// Receiving end (0 dialer, 1 acceptor).
        to: usize,
        /// What.
        item: V2Item,
    },
    /// The idle check of one end of a sync v2 connection.
    V2Idle {
        /// Connection.
        conn: u64,
        /// Which end.
        to: usize,
    },
    /// A download ends.
    Download {
        /// Node.
        node: usize,
        /// Incarnation.
        epoch: u32,
        /// Blob.
        hash: Hash,
        /// Providers named by `Live`.
        providers: Vec<PeerId>,
    },
    /// A partition starts.
    PartitionStart(usize),
    /// A partition heals.
    PartitionEnd(usize),
    /// A gossip stall starts.
    GossipStallStart(usize),
    /// A gossip stall ends.
    GossipStallEnd(usize),
    /// The stalled node's runtime probes its gossip layer (while stall `usize` lasts).
    GossipProbe(usize),
    /// A crash.
    Crash(usize),
    /// A node restarts.
    Restart(usize),
    /// Work of the byzantine node.
    Byzantine(ByzEvent),
    /// End of the safety phase: heal everything, start liveness.
    Heal,
    /// Liveness check.
    Check,
}
