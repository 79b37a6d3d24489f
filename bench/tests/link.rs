//! The link emulator: delay, loss, bandwidth and tail drop on plain UDP sockets, and a real
//! iroh connection through it. Bounds are loose: these tests check the emulator does what it
//! says, they do not time anything else.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    time::{Duration, Instant},
};

use iroh::endpoint::PathEvent;
use sheaf_bench::{
    link::{Direction, Link, LinkConfig},
    nodes::{addr_at, endpoint_on, Family},
};
use tokio::net::UdpSocket;

const MS: Duration = Duration::from_millis(1);

async fn pair() -> (UdpSocket, UdpSocket, SocketAddr, SocketAddr) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    (a, b, aa, ba)
}

fn config(a_to_b: Direction, b_to_a: Direction, seed: u64) -> LinkConfig {
    LinkConfig {
        a_to_b,
        b_to_a,
        seed,
        burst_gap: 10 * MS,
        burst_min_bytes: 1,
    }
}

/// A packet: sequence number, then `len - 8` bytes derived from it.
fn packet(seq: u64, len: usize) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((0..len - 8).map(|i| (seq as usize + i) as u8));
    p
}

/// Receives on its own task (so that the socket buffer never fills) until nothing arrived for
/// `quiet`; returns (sequence number, arrival) per packet and checks every packet is intact.
fn receive(sock: UdpSocket, quiet: Duration) -> tokio::task::JoinHandle<Vec<(u64, Instant)>> {
    tokio::spawn(async move { drain(&sock, quiet).await })
}

/// [`receive`] on this task.
async fn drain(sock: &UdpSocket, quiet: Duration) -> Vec<(u64, Instant)> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Ok(r) = tokio::time::timeout(quiet, sock.recv_from(&mut buf)).await {
        let (len, _) = r.unwrap();
        let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
        assert_eq!(&buf[..len], &packet(seq, len)[..], "packet {seq} altered");
        got.push((seq, Instant::now()));
    }
    got
}

/// Sends `count` packets of `len` bytes, `per_ms` per millisecond (the kernel's socket
/// buffers would drop a larger burst before the relay reads it).
async fn send_paced(sock: &UdpSocket, to: SocketAddr, count: u64, len: usize, per_ms: u64) {
    // A rate, not a wait for anything to happen: one tick per `per_ms` packets.
    let mut rate = tokio::time::interval(MS);
    for seq in 0..count {
        if seq % per_ms == 0 {
            rate.tick().await;
        }
        sock.send_to(&packet(seq, len), to).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_per_direction() {
    let (a, b, aa, ba) = pair().await;
    let link = Link::start(
        aa,
        ba,
        config(Direction::delay(40 * MS), Direction::delay(10 * MS), 1),
    )
    .await
    .unwrap();
    for (from, to, target, delay) in [
        (&a, &b, link.addr_for_a(), 40 * MS),
        (&b, &a, link.addr_for_b(), 10 * MS),
    ] {
        let mut sent = Vec::new();
        // Probes 3 ms apart (a rate); their arrival is awaited by `drain`.
        let mut rate = tokio::time::interval(3 * MS);
        for seq in 0..10u64 {
            rate.tick().await;
            sent.push(Instant::now());
            from.send_to(&packet(seq, 100), target).await.unwrap();
        }
        let got = drain(to, 300 * MS).await;
        assert_eq!(got.len(), 10);
        let mut delays: Vec<Duration> = got.iter().map(|(s, at)| *at - sent[*s as usize]).collect();
        delays.sort();
        assert!(delays[0] >= delay, "{delays:?} shorter than {delay:?}");
        assert!(
            delays[5] < delay + 100 * MS,
            "{delays:?} far above {delay:?}"
        );
    }
    let s = link.stats();
    assert_eq!((s.a_to_b.packets_out, s.b_to_a.packets_out), (10, 10));
    assert_eq!(s.a_to_b.bytes_out, 1000);
    // 3 ms apart, less than the 10 ms gap: one burst, unless a loaded machine stretched a
    // sleep past the gap; never more bursts than packets.
    assert!((1..=10).contains(&s.a_to_b.bursts), "{s:?}");
}

async fn lossy_run(seed: u64) -> (BTreeSet<u64>, u64) {
    let (a, b, aa, ba) = pair().await;
    let lossy = Direction::delay(MS).with_loss(0.2);
    let link = Link::start(aa, ba, config(lossy, lossy, seed))
        .await
        .unwrap();
    let rx = receive(b, 300 * MS);
    send_paced(&a, link.addr_for_a(), 1000, 64, 10).await;
    let got = rx.await.unwrap();
    let seqs: BTreeSet<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs.len(), got.len(), "a packet was duplicated");
    assert!(seqs.iter().all(|s| *s < 1000), "a packet was invented");
    let st = link.stats().a_to_b;
    assert_eq!(st.packets_in, 1000);
    assert_eq!(st.tail_dropped, 0);
    assert_eq!(st.packets_out, got.len() as u64);
    assert_eq!(st.lost + st.packets_out, 1000);
    (seqs, st.lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_within_tolerance_and_seeded() {
    let (first, lost) = lossy_run(7).await;
    assert!((150..=250).contains(&lost), "lost {lost} of 1000 at 20%");
    // Same seed, same packets in the same order: the same packets are lost.
    let (again, _) = lossy_run(7).await;
    assert_eq!(first, again);
    let (other, _) = lossy_run(8).await;
    assert_ne!(first, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap() {
    let (a, b, aa, ba) = pair().await;
    // 500 kB/s: 100 packets of 1,000 bytes take 200 ms to serialise.
    let capped = Direction::delay(MS).with_bandwidth(500_000, 1 << 20);
    let link = Link::start(aa, ba, config(capped, capped, 3))
        .await
        .unwrap();
    let rx = receive(b, 300 * MS);
    let t0 = Instant::now();
    send_paced(&a, link.addr_for_a(), 100, 1000, 10).await;
    let got = rx.await.unwrap();
    assert_eq!(got.len(), 100);
    let span = got.last().unwrap().1 - t0;
    assert!(span >= 195 * MS, "100 kB at 500 kB/s in {span:?}");
    assert!(span < 2000 * MS, "100 kB at 500 kB/s in {span:?}");
    // Without jitter nothing reorders.
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_the_tail() {
    let (a, b, aa, ba) = pair().await;
    // 100 kB/s with 10 kB of queue: a burst of 50 kB keeps about the first 10 packets.
    let capped = Direction::delay(MS).with_bandwidth(100_000, 10_000);
    let link = Link::start(aa, ba, config(capped, capped, 4))
        .await
        .unwrap();
    let rx = receive(b, 500 * MS);
    send_paced(&a, link.addr_for_a(), 50, 1000, 25).await;
    let got = rx.await.unwrap();
    let st = link.stats().a_to_b;
    assert_eq!(st.packets_out + st.tail_dropped, 50);
    assert_eq!(st.packets_out, got.len() as u64);
    assert!(
        (10..=20).contains(&got.len()),
        "{} of 50 through a 10-packet queue",
        got.len()
    );
    // The head of the burst goes through, the tail is dropped.
    assert!(got
        .iter()
        .take(10)
        .enumerate()
        .all(|(i, (s, _))| *s == i as u64));
}

mod echo {
    use iroh::{
        endpoint::Connection,
        protocol::{AcceptError, ProtocolHandler},
    };

    pub const ALPN: &[u8] = b"sheaf-bench/link-test/0";

    #[derive(Debug, Clone)]
    pub struct Echo;

    impl ProtocolHandler for Echo {
        async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                tokio::io::copy(&mut recv, &mut send).await?;
                send.finish()?;
            }
            Ok(())
        }
    }
}

/// A real iroh connection between an IPv6 and an IPv4 endpoint works through the link, and
/// its traffic stays on it (no direct path around it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iroh_through_link() {
    let a = endpoint_on(Family::V6).await.unwrap();
    let b = endpoint_on(Family::V4).await.unwrap();
    let a_sock = a.bound_sockets()[0];
    let b_sock = b.bound_sockets()[0];
    let link = Link::start(a_sock, b_sock, LinkConfig::symmetric(20 * MS, 0.0, 5))
        .await
        .unwrap();
    let router = iroh::protocol::Router::builder(a.clone())
        .accept(echo::ALPN, echo::Echo)
        .spawn();
    let conn = b
        .connect(addr_at(a.id(), link.addr_for_b()), echo::ALPN)
        .await
        .unwrap();
    // Every path iroh opens or selects from here on: none may lead around the link.
    let mut events = conn.path_events();
    let paths = tokio::spawn(async move {
        use futures_lite::StreamExt;
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                PathEvent::Opened { remote_addr, .. } | PathEvent::Selected { remote_addr, .. } => {
                    seen.push(remote_addr)
                }
                _ => {}
            }
        }
        seen
    });
    let payload = vec![7u8; 100_000];
    for round in 0..3 {
        let before = link.stats();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let t0 = Instant::now();
        send.write_all(&payload).await.unwrap();
        send.finish().unwrap();
        let back = recv.read_to_end(1 << 20).await.unwrap();
        assert_eq!(back, payload);
        let d = link.stats() - before;
        assert!(
            d.a_to_b.bytes_out >= 100_000 && d.b_to_a.bytes_out >= 100_000,
            "round {round}: only {d:?} crossed the link"
        );
        // At least one round trip of the link.
        assert!(t0.elapsed() >= 20 * MS);
    }
    assert_eq!(link.stats().a_to_b.foreign + link.stats().b_to_a.foreign, 0);
    let through_link = iroh::TransportAddr::Ip(link.addr_for_b());
    let open: Vec<iroh::TransportAddr> = conn
        .paths()
        .iter()
        .map(|p| p.remote_addr().clone())
        .collect();
    assert!(
        !open.is_empty() && open.iter().all(|addr| *addr == through_link),
        "open paths {open:?}"
    );
    conn.close(0u32.into(), b"done");
    // The event stream ends with the connection.
    let seen = paths.await.unwrap();
    assert!(
        seen.iter().all(|addr| *addr == through_link),
        "a path around the link: {seen:?}"
    );
    router.shutdown().await.unwrap();
    b.close().await;
}
