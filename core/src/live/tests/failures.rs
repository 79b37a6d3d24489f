//! A store executor that stops: every command it had not answered is answered with
//! [`StoreFailure::Stopped`], so API calls and sessions end instead of waiting forever.

use super::router::*;
use crate::{
    live::*,
    testutil::ns,
    time::{Mono, Now},
};

#[test]
fn a_stopped_store_answers_what_it_had_not() {
    let mut live = Live::new(LiveConfig::default(), peer_id(0), [0; 32]);
    let now = Now {
        mono: Mono(1),
        wall_micros: 1,
    };
    let request = ApiRequestId(7);
    live.handle(
        now,
        Input::Api {
            request,
            command: ApiCommand::StartSync {
                namespace: ns(1).id(),
                peers: Vec::new(),
            },
        },
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| live.poll_output()).collect();
    assert!(outputs.iter().any(|o| matches!(o, Output::Store { .. })));
    assert_eq!(live.pending_store_requests(), 1);

    live.handle(now, Input::StoreStopped);
    let outputs: Vec<Output> = std::iter::from_fn(|| live.poll_output()).collect();
    assert_eq!(live.pending_store_requests(), 0);
    let reply = outputs.iter().find_map(|o| match o {
        Output::Reply { request: r, result } if *r == request => Some(result.clone()),
        _ => None,
    });
    assert_eq!(reply, Some(Err(LiveError::Store(StoreFailure::Stopped))));
    live.check_invariants().unwrap();
}
