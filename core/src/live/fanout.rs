//! Delivering events to subscribers without ever waiting for them.
//!
//! A subscriber that stops reading must not stall the node (iroh-docs' actor blocks on full
//! subscriber channels, its issue #81). The runtime gives each subscriber a bounded channel
//! and sends through a [`LagTracker`]: when the channel is full the event is dropped and
//! counted, and before the next event that fits, the subscriber receives
//! [`LiveEvent::Lagged`] with the number it missed.

use super::types::LiveEvent;

/// Per-subscriber bookkeeping of dropped events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LagTracker {
    missed: u64,
}

impl LagTracker {
    /// A tracker with nothing missed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events dropped since the last `Lagged` marker went through.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Offers `event` through `try_send`, which returns the event back (`Some`) when the
    /// channel is full. A pending `Lagged` marker goes first. Returns whether `event` was
    /// delivered.
    pub fn send(
        &mut self,
        event: LiveEvent,
        mut try_send: impl FnMut(LiveEvent) -> Option<LiveEvent>,
    ) -> bool {
        if self.missed > 0 {
            let marker = LiveEvent::Lagged {
                missed: self.missed,
            };
            if try_send(marker).is_some() {
                self.missed += 1;
                return false;
            }
            self.missed = 0;
        }
        if try_send(event).is_some() {
            self.missed += 1;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn channel(cap: usize) -> (VecDeque<LiveEvent>, usize) {
        (VecDeque::new(), cap)
    }

    #[test]
    fn a_full_subscriber_gets_a_lagged_marker_then_new_events() {
        let (mut q, cap) = channel(2);
        let mut lag = LagTracker::new();
        let send = |lag: &mut LagTracker, q: &mut VecDeque<LiveEvent>, n: u64| {
            lag.send(LiveEvent::Lagged { missed: 1000 + n }, |e| {
                if q.len() < cap {
                    q.push_back(e);
                    None
                } else {
                    Some(e)
                }
            })
        };
        assert!(send(&mut lag, &mut q, 0));
        assert!(send(&mut lag, &mut q, 1));
        // Full: three events dropped.
        for n in 2..5 {
            assert!(!send(&mut lag, &mut q, n));
        }
        assert_eq!(lag.missed(), 3);
        // The reader takes one: the marker fits but the event does not.
        q.pop_front();
        assert!(!send(&mut lag, &mut q, 5));
        assert_eq!(q.back(), Some(&LiveEvent::Lagged { missed: 3 }));
        assert_eq!(lag.missed(), 1);
        // The reader drains: marker then event.
        q.clear();
        assert!(send(&mut lag, &mut q, 6));
        assert_eq!(
            q.iter().cloned().collect::<Vec<_>>(),
            vec![
                LiveEvent::Lagged { missed: 1 },
                LiveEvent::Lagged { missed: 1006 }
            ]
        );
        assert_eq!(lag.missed(), 0);
    }
}
