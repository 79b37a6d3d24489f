//! Sync v2 rounds on the live task: the rounds `Live` dials, and the admission of rounds
//! peers dial (`Live` decides; this answers the connection's task waiting for it).

use std::sync::atomic::Ordering;

use sheaf_core::{
    hash::PeerId,
    keys::NamespaceId,
    live::{Input, Role, RoundOutcome, SessionError, SessionId},
    v2::codec::AbortCode,
};
use tokio::sync::oneshot;

use super::{LiveMsg, LiveTask};
use crate::{convert::endpoint_id, runtime::Runtime};

/// Where the live task answers a served round's admission: its session and the refusal.
pub(crate) type AdmitReply = oneshot::Sender<(SessionId, Option<AbortCode>)>;

impl<R: Runtime> LiveTask<R> {
    /// Runs a sync v2 round `Live` asked for; its end comes back as [`Input::SyncAllEnded`].
    pub(super) fn start_round(
        &mut self,
        session: SessionId,
        peer: PeerId,
        namespaces: Vec<NamespaceId>,
    ) {
        let (Some(id), Some(config)) = (endpoint_id(peer), self.v2) else {
            let error = SessionError::Transport("invalid peer id, or sync v2 off".into());
            return self.input(Input::SyncAllEnded {
                session,
                outcome: RoundOutcome::Failed(error),
            });
        };
        let (cancel, cancelled) = oneshot::channel();
        self.rounds.insert(session, cancel);
        let ctx = crate::v2::Ctx {
            rt: self.rt.clone(),
            store: self.store.clone(),
            me: self.live.me(),
            metrics: self.metrics.clone(),
            pool: self.v2_pool.clone(),
        };
        let (endpoint, tx) = (self.endpoint.clone(), self.tx.clone());
        self.rt.spawn(Box::pin(async move {
            let result = crate::v2::dial_round(
                ctx,
                &endpoint,
                id.into(),
                config,
                Some(&namespaces),
                Some(cancelled),
            )
            .await;
            let outcome = match result {
                Ok(Some(report)) => RoundOutcome::Synced(report),
                Ok(None) => RoundOutcome::V1Only,
                Err(crate::docs::DocsError::SyncV2Refused) => RoundOutcome::Refused,
                Err(e) => RoundOutcome::Failed(SessionError::Transport(e.to_string())),
            };
            let _ = tx
                .send(LiveMsg::Input(Input::SyncAllEnded { session, outcome }))
                .await;
        }));
    }

    /// A peer dialed a round: `Live` answers within this step ([`Self::round_admitted`]).
    pub(super) fn admit_round(
        &mut self,
        now: sheaf_core::time::Now,
        peer: PeerId,
        reply: AdmitReply,
    ) {
        let session = SessionId {
            role: Role::Accept,
            n: self.next_accept.fetch_add(1, Ordering::Relaxed),
        };
        self.admits.insert(session, reply);
        self.live
            .handle(now, Input::RoundAccepted { session, peer });
    }

    /// `Live`'s answer to [`Self::admit_round`], handed to the connection's task.
    pub(super) fn round_admitted(&mut self, session: SessionId, refusal: Option<AbortCode>) {
        let answered = self
            .admits
            .remove(&session)
            .is_some_and(|reply| reply.send((session, refusal)).is_ok());
        if !answered && refusal.is_none() {
            // The connection's task is gone: the round will not run.
            self.input(Input::RoundServed {
                session,
                report: None,
                took: std::time::Duration::ZERO,
            });
        }
    }
}
