//! A userspace link emulator: a UDP relay on loopback between two real endpoints, with one-way
//! delay, jitter, loss and a bandwidth cap per direction.
//!
//! These machines have no kernel netem, and on loopback a round trip costs some 0.1 ms, so
//! nothing measured there can see round trips. [`Link`] puts a slow link between two nodes:
//!
//! ```text
//!   node A ──▶ socket SA ──[A→B: queue, delay, jitter, loss]──▶ socket SB ──▶ node B
//!   node A ◀── socket SA ◀──[B→A: queue, delay, jitter, loss]── socket SB ◀── node B
//! ```
//!
//! A sends to SA, which forwards what it receives from A out of SB to B; B sends to SB, which
//! forwards out of SA to A. So B sees A at SB's address and A sees B at SA's: dial
//! [`Link::addr_for_a`] from A and [`Link::addr_for_b`] from B. Datagrams from any other
//! source are counted and ignored.
//!
//! **Keeping iroh on the link.** iroh endpoints tell each other their local addresses inside
//! the encrypted connection (QUIC NAT traversal) and open a direct path if one answers, which
//! on loopback always would, bypassing the link. The bench therefore binds one node on IPv6
//! loopback (`[::1]`) and the other on IPv4 (`127.0.0.1`) only ([`crate::nodes::Family`]):
//! neither can send to the other's advertised address, and SA and SB are bound in the family
//! of the node they face. The `iroh_through_link` test checks that the traffic of a
//! connection crosses the link.
//!
//! **Per packet**, in arrival order per direction, with one seeded ChaCha generator per
//! direction: drop with probability `loss` (independent losses, no bursts); otherwise queue
//! it behind the packets not yet serialised at `bandwidth` bytes per second (no cap: no
//! queueing), then deliver it `delay` plus a uniform draw from `0..=jitter` after it leaves
//! the queue. The draws are deterministic given the seed and the order packets arrive in;
//! that order is the endpoints' and the OS's, not the emulator's.
//!
//! **Bounds.** Both queues are bounded and drop the arriving packet when full, like a
//! router's tail drop: the bandwidth queue at `queue_bytes` bytes waiting to be serialised,
//! the delay line at `max_in_flight` packets. Drops are counted ([`DirStats`]).
//!
//! **Limits.** Packets reorder only through jitter (a later packet with a smaller draw
//! overtakes); there is no duplication, corruption, MTU change, burst loss or cross
//! traffic. Delivery times have the tokio timer's resolution (1 ms, rounded up), so short
//! delays come out up to a millisecond long. Packets the kernel drops on a full socket
//! buffer before the relay reads them are not seen or counted. A link serves one pair of
//! endpoints.

use std::{
    collections::BinaryHeap,
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use tokio::{net::UdpSocket, task::JoinHandle, time::Instant};

/// Largest datagram the relay forwards (iroh's QUIC packets are at most ~1,500 bytes).
const MAX_DATAGRAM: usize = 65_535;

/// One direction of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Direction {
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Up to this much more delay, drawn uniformly per packet.
    pub jitter: Duration,
    /// Probability that a packet is dropped (0 to 1).
    pub loss: f64,
    /// Bytes per second the direction carries; `None` for no cap.
    pub bandwidth: Option<u64>,
    /// Most bytes waiting for the bandwidth cap; a packet that would exceed it is dropped.
    pub queue_bytes: usize,
    /// Most packets in the delay line; a packet that would exceed it is dropped.
    pub max_in_flight: usize,
}

impl Direction {
    /// A direction with `delay` and nothing else: no jitter, loss or bandwidth cap; 1 MiB of
    /// queue and 65,536 packets in flight.
    pub fn delay(delay: Duration) -> Self {
        Self {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
            bandwidth: None,
            queue_bytes: 1 << 20,
            max_in_flight: 1 << 16,
        }
    }

    /// With this loss probability.
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// With this jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// With this bandwidth cap (bytes per second) and queue (bytes).
    pub fn with_bandwidth(mut self, bytes_per_sec: u64, queue_bytes: usize) -> Self {
        self.bandwidth = Some(bytes_per_sec);
        self.queue_bytes = queue_bytes;
        self
    }
}

/// A link: both directions and the seed of their draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// From A to B.
    pub a_to_b: Direction,
    /// From B to A.
    pub b_to_a: Direction,
    /// Seed of the loss and jitter draws.
    pub seed: u64,
    /// A packet that arrives this long or more after the previous packet of at least
    /// [`LinkConfig::burst_min_bytes`] in its direction starts a new burst ([`DirStats::bursts`]).
    pub burst_gap: Duration,
    /// Packets smaller than this (acks, keep-alives) do not count towards bursts.
    pub burst_min_bytes: usize,
}

impl LinkConfig {
    /// A symmetric link of round-trip time `rtt` (half each way) and loss `loss` per direction;
    /// bursts are separated by a third of the round trip.
    pub fn symmetric(rtt: Duration, loss: f64, seed: u64) -> Self {
        let one_way = Direction::delay(rtt / 2).with_loss(loss);
        Self {
            a_to_b: one_way,
            b_to_a: one_way,
            seed,
            burst_gap: rtt / 3,
            burst_min_bytes: 200,
        }
    }
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct DirCounters {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    lost: AtomicU64,
    tail_dropped: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    bursts: AtomicU64,
    foreign: AtomicU64,
}

/// A snapshot of one direction's counters; subtract two to measure an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Packets received from the sending endpoint.
    pub packets_in: u64,
    /// Their bytes (UDP payload).
    pub bytes_in: u64,
    /// Packets dropped by the loss draw.
    pub lost: u64,
    /// Packets dropped because a queue was full.
    pub tail_dropped: u64,
    /// Packets delivered to the receiving endpoint.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Bursts of packets of at least `burst_min_bytes`, separated by `burst_gap` of silence:
    /// on a link whose delay dwarfs processing, one per message flight of a request/response
    /// protocol.
    pub bursts: u64,
    /// Datagrams from a source other than the endpoint this side faces (ignored).
    pub foreign: u64,
}

impl DirCounters {
    fn snapshot(&self) -> DirStats {
        DirStats {
            packets_in: self.packets_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            lost: self.lost.load(Relaxed),
            tail_dropped: self.tail_dropped.load(Relaxed),
            packets_out: self.packets_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            bursts: self.bursts.load(Relaxed),
            foreign: self.foreign.load(Relaxed),
        }
    }
}

impl std::ops::Sub for DirStats {
    type Output = DirStats;
    fn sub(self, o: DirStats) -> DirStats {
        DirStats {
            packets_in: self.packets_in - o.packets_in,
            bytes_in: self.bytes_in - o.bytes_in,
            lost: self.lost - o.lost,
            tail_dropped: self.tail_dropped - o.tail_dropped,
            packets_out: self.packets_out - o.packets_out,
            bytes_out: self.bytes_out - o.bytes_out,
            bursts: self.bursts - o.bursts,
            foreign: self.foreign - o.foreign,
        }
    }
}

/// Both directions' counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// From A to B.
    pub a_to_b: DirStats,
    /// From B to A.
    pub b_to_a: DirStats,
}

impl LinkStats {
    /// Bytes delivered both ways.
    pub fn bytes(&self) -> u64 {
        self.a_to_b.bytes_out + self.b_to_a.bytes_out
    }
}

impl std::ops::Sub for LinkStats {
    type Output = LinkStats;
    fn sub(self, o: LinkStats) -> LinkStats {
        LinkStats {
            a_to_b: self.a_to_b - o.a_to_b,
            b_to_a: self.b_to_a - o.b_to_a,
        }
    }
}

/// A running link; its relay tasks stop when it is dropped.
pub struct Link {
    sa: SocketAddr,
    sb: SocketAddr,
    counters: [Arc<DirCounters>; 2],
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn loopback_socket(like: SocketAddr) -> io::Result<UdpSocket> {
    let ip: std::net::IpAddr = match like {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

impl Link {
    /// Starts a link between the endpoints bound at `a` and `b` (on loopback). Must be
    /// called within a tokio runtime with the time driver enabled.
    pub async fn start(a: SocketAddr, b: SocketAddr, config: LinkConfig) -> io::Result<Link> {
        let sa = Arc::new(loopback_socket(a).await?);
        let sb = Arc::new(loopback_socket(b).await?);
        let counters = [Arc::default(), Arc::default()];
        let ab = Relay {
            from: a,
            to: b,
            dir: config.a_to_b,
            rng: ChaCha12Rng::seed_from_u64(config.seed.wrapping_mul(2)),
            counters: Arc::clone(&counters[0]),
            burst_gap: config.burst_gap,
            burst_min_bytes: config.burst_min_bytes,
        };
        let ba = Relay {
            from: b,
            to: a,
            dir: config.b_to_a,
            rng: ChaCha12Rng::seed_from_u64(config.seed.wrapping_mul(2).wrapping_add(1)),
            counters: Arc::clone(&counters[1]),
            burst_gap: config.burst_gap,
            burst_min_bytes: config.burst_min_bytes,
        };
        let (sa_addr, sb_addr) = (sa.local_addr()?, sb.local_addr()?);
        let tasks = [
            tokio::spawn(ab.run(Arc::clone(&sa), Arc::clone(&sb))),
            tokio::spawn(ba.run(sb, sa)),
        ];
        Ok(Link {
            sa: sa_addr,
            sb: sb_addr,
            counters,
            tasks,
        })
    }

    /// The address A sends to in order to reach B (socket SA).
    pub fn addr_for_a(&self) -> SocketAddr {
        self.sa
    }

    /// The address B sends to in order to reach A (socket SB).
    pub fn addr_for_b(&self) -> SocketAddr {
        self.sb
    }

    /// The counters of both directions now.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            a_to_b: self.counters[0].snapshot(),
            b_to_a: self.counters[1].snapshot(),
        }
    }
}

/// A packet in the delay line, ordered by delivery time, then arrival.
#[derive(Debug, PartialEq, Eq)]
struct Pending {
    at: Instant,
    seq: u64,
    data: Vec<u8>,
}

impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Earliest first out of the max-heap.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// One direction's relay: receives on the socket facing the sender, delivers from the socket
/// facing the receiver.
struct Relay {
    from: SocketAddr,
    to: SocketAddr,
    dir: Direction,
    rng: ChaCha12Rng,
    counters: Arc<DirCounters>,
    burst_gap: Duration,
    burst_min_bytes: usize,
}

impl Relay {
    async fn run(mut self, inbound: Arc<UdpSocket>, outbound: Arc<UdpSocket>) {
        let mut line: BinaryHeap<Pending> = BinaryHeap::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // When the bandwidth queue empties (the last queued byte has been serialised).
        let mut queue_free = Instant::now();
        let mut last_data: Option<Instant> = None;
        let mut seq = 0u64;
        loop {
            let next = line.peek().map(|p| p.at);
            tokio::select! {
                r = inbound.recv_from(&mut buf) => {
                    let Ok((len, src)) = r else { continue };
                    let now = Instant::now();
                    if src != self.from {
                        self.counters.foreign.fetch_add(1, Relaxed);
                        continue;
                    }
                    self.counters.packets_in.fetch_add(1, Relaxed);
                    self.counters.bytes_in.fetch_add(len as u64, Relaxed);
                    if len >= self.burst_min_bytes {
                        if last_data.is_none_or(|t| now - t >= self.burst_gap) {
                            self.counters.bursts.fetch_add(1, Relaxed);
                        }
                        last_data = Some(now);
                    }
                    if let Some(at) = self.admit(now, len, &mut queue_free, line.len()) {
                        seq += 1;
                        line.push(Pending { at, seq, data: buf[..len].to_vec() });
                    }
                }
                () = sleep_until_opt(next) => {
                    let now = Instant::now();
                    while line.peek().is_some_and(|p| p.at <= now) {
                        let p = line.pop().expect("peeked");
                        if outbound.send_to(&p.data, self.to).await.is_ok() {
                            self.counters.packets_out.fetch_add(1, Relaxed);
                            self.counters.bytes_out.fetch_add(p.data.len() as u64, Relaxed);
                        }
                    }
                }
            }
        }
    }

    /// Draws loss and jitter for a packet of `len` bytes arriving at `now`; returns when to
    /// deliver it, or `None` if it is dropped (and counted).
    fn admit(
        &mut self,
        now: Instant,
        len: usize,
        queue_free: &mut Instant,
        in_flight: usize,
    ) -> Option<Instant> {
        // Draw both for every packet so one packet's fate does not shift the next one's draws.
        let lost = self.rng.random_bool(self.dir.loss.clamp(0.0, 1.0));
        let jitter_ns = self.dir.jitter.as_nanos() as u64;
        let jitter = Duration::from_nanos(if jitter_ns == 0 {
            0
        } else {
            self.rng.random_range(0..=jitter_ns)
        });
        if lost {
            self.counters.lost.fetch_add(1, Relaxed);
            return None;
        }
        if in_flight >= self.dir.max_in_flight {
            self.counters.tail_dropped.fetch_add(1, Relaxed);
            return None;
        }
        let departs = match self.dir.bandwidth {
            None => now,
            Some(rate) => {
                let start = (*queue_free).max(now);
                // Bytes still waiting to be serialised ahead of this packet.
                let waiting = (start - now).as_secs_f64() * rate as f64;
                if waiting + len as f64 > self.dir.queue_bytes as f64 {
                    self.counters.tail_dropped.fetch_add(1, Relaxed);
                    return None;
                }
                let done = start + Duration::from_secs_f64(len as f64 / rate as f64);
                *queue_free = done;
                done
            }
        };
        Some(departs + self.dir.delay + jitter)
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
