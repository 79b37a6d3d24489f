//! Test harness: two [`Round`]s over in-memory streams, each with a real store executor.
//!
//! Streams are reliable and ordered, as QUIC's; a stream the acceptor opens is seen by the
//! dialer when its first item arrives. Delivery is either by *flights* (everything queued in
//! one direction, then everything in the other: a flight is half a round trip) or, with an
//! rng, one item of a random non-empty stream at a time.

use std::collections::{BTreeMap, VecDeque};

use super::{Round, RoundInput, RoundOutput, RoundReport};
use crate::{
    hash::PeerId,
    ranger::ContentStatusSource,
    replica::{Replicas, V2Command, V2Response},
    store::Backend,
    testutil::XorShift,
    time::Now,
    v2::{codec::Message, conn::ConnConfig},
};

/// An item on a stream.
enum Item {
    Msg(Message),
    Fin,
}

/// How a round went.
pub(crate) struct Outcome {
    pub(crate) dialer: Result<RoundReport, String>,
    pub(crate) acceptor: Result<RoundReport, String>,
    /// Flights (in flight mode) or items delivered (random mode).
    pub(crate) steps: u32,
}

/// One side: its round, its store and its stream names.
struct Side<'a, B: Backend, C: ContentStatusSource> {
    round: Round,
    store: &'a mut Replicas<B, C>,
    now: Now,
    /// Our stream id → link.
    links: BTreeMap<u64, u64>,
    /// Link → our stream id.
    ids: BTreeMap<u64, u64>,
    ended: Option<Result<RoundReport, String>>,
}

/// Links (stream pairs), 0 being control, and what travels on them in each direction.
#[derive(Default)]
struct Net {
    /// (towards the dialer, link) → items.
    queues: BTreeMap<(bool, u64), VecDeque<Item>>,
    next_link: u64,
    /// A side closed the connection: the other learns `Closed`, what was in flight is lost.
    closed_by: Option<bool>,
}

fn offers<B: Backend, C: ContentStatusSource>(
    r: &mut Replicas<B, C>,
    now: Now,
) -> Vec<crate::v2::conn::Offer> {
    match r.apply_v2(now, V2Command::Offers) {
        Ok(V2Response::Offers(o)) => o,
        other => panic!("{other:?}"),
    }
}

/// Runs one round between `d` (the dialer, node id `dp`) and `a` (the acceptor, `ap`) to its
/// end, in flights or, with `rng`, item by item. The dialer offers `only` (all: `None`).
pub(crate) fn run_round<
    B1: Backend,
    C1: ContentStatusSource,
    B2: Backend,
    C2: ContentStatusSource,
>(
    d: &mut Replicas<B1, C1>,
    a: &mut Replicas<B2, C2>,
    (dp, ap): (PeerId, PeerId),
    config: ConnConfig,
    now: Now,
    only: Option<&[crate::keys::NamespaceId]>,
    mut rng: Option<&mut XorShift>,
) -> Outcome {
    let mut d_offers = offers(d, now);
    if let Some(only) = only {
        d_offers.retain(|o| only.contains(&o.namespace));
    }
    let a_offers = offers(a, now);
    let mut ds = Side {
        round: Round::dial(1, config, [5; 32], dp, ap, &d_offers).expect("dial"),
        store: d,
        now,
        links: BTreeMap::new(),
        ids: BTreeMap::new(),
        ended: None,
    };
    let mut as_ = Side {
        round: Round::accept(1, config, ap, dp, a_offers),
        store: a,
        now,
        links: BTreeMap::new(),
        ids: BTreeMap::new(),
        ended: None,
    };
    let mut net = Net {
        next_link: 1,
        ..Net::default()
    };
    let mut steps = 0;
    let mut to_dialer = false;
    loop {
        drain(&mut ds, &mut net, false);
        drain(&mut as_, &mut net, true);
        if let Some(by_dialer) = net.closed_by.take() {
            net.queues.clear();
            if by_dialer {
                as_.round.handle(RoundInput::Closed);
            } else {
                ds.round.handle(RoundInput::Closed);
            }
            continue;
        }
        if ds.ended.is_some() && as_.ended.is_some() {
            break;
        }
        let keys: Vec<(bool, u64)> = net
            .queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            panic!(
                "stuck: dialer {:?}, acceptor {:?}",
                ds.ended.is_some(),
                as_.ended.is_some()
            );
        }
        steps += 1;
        assert!(steps < 100_000, "no end");
        match rng.as_deref_mut() {
            Some(rng) => {
                let k = keys[rng.below(keys.len() as u64) as usize];
                let item = net.queues.get_mut(&k).unwrap().pop_front().unwrap();
                if k.0 {
                    deliver(&mut ds, k.1, item, true);
                } else {
                    deliver(&mut as_, k.1, item, false);
                }
            }
            None => {
                if !keys.iter().any(|k| k.0 == to_dialer) {
                    to_dialer = !to_dialer;
                }
                for k in keys.into_iter().filter(|k| k.0 == to_dialer) {
                    let items: Vec<Item> = net.queues.get_mut(&k).unwrap().drain(..).collect();
                    for item in items {
                        if to_dialer {
                            deliver(&mut ds, k.1, item, true);
                        } else {
                            deliver(&mut as_, k.1, item, false);
                        }
                    }
                }
                to_dialer = !to_dialer;
            }
        }
    }
    Outcome {
        dialer: ds.ended.unwrap(),
        acceptor: as_.ended.unwrap(),
        steps,
    }
}

fn deliver<B: Backend, C: ContentStatusSource>(
    side: &mut Side<'_, B, C>,
    link: u64,
    item: Item,
    dialer: bool,
) {
    let input = if link == 0 {
        match item {
            Item::Msg(m) => RoundInput::Control(m),
            Item::Fin => RoundInput::ControlEnded,
        }
    } else {
        let id = match side.ids.get(&link) {
            Some(id) => *id,
            None if dialer => match side.round.incoming() {
                Some(id) => {
                    side.ids.insert(link, id);
                    side.links.insert(id, link);
                    id
                }
                None => return,
            },
            None => return,
        };
        match item {
            Item::Msg(message) => RoundInput::Doc {
                stream: id,
                message,
            },
            Item::Fin => RoundInput::DocEnded(id),
        }
    };
    side.round.handle(input);
}

/// Carries out a side's outputs; `to_dialer`: what it writes goes to the dialer.
fn drain<B: Backend, C: ContentStatusSource>(
    side: &mut Side<'_, B, C>,
    net: &mut Net,
    to_dialer: bool,
) {
    while let Some(o) = side.round.poll_output() {
        match o {
            RoundOutput::Store(cmd) => {
                let r = side
                    .store
                    .apply_v2(side.now, cmd)
                    .map_err(|e| e.to_string());
                side.round.handle(RoundInput::Store(r));
            }
            RoundOutput::Control(msgs) => {
                let q = net.queues.entry((to_dialer, 0)).or_default();
                q.extend(msgs.into_iter().map(Item::Msg));
            }
            RoundOutput::Open(id) => {
                let link = net.next_link;
                net.next_link += 1;
                side.links.insert(id, link);
                side.ids.insert(link, id);
            }
            RoundOutput::Send { stream, messages } => {
                let link = side.links[&stream];
                let q = net.queues.entry((to_dialer, link)).or_default();
                q.extend(messages.into_iter().map(Item::Msg));
            }
            RoundOutput::Finish(stream) => {
                let link = side.links[&stream];
                net.queues
                    .entry((to_dialer, link))
                    .or_default()
                    .push_back(Item::Fin);
            }
            RoundOutput::FinishControl => {
                net.queues
                    .entry((to_dialer, 0))
                    .or_default()
                    .push_back(Item::Fin);
            }
            RoundOutput::Close(_) => {
                if net.closed_by.is_none() {
                    net.closed_by = Some(!to_dialer);
                }
            }
            RoundOutput::Ended(r) => side.ended = Some(r),
        }
    }
}
