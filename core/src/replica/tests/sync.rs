//! Reconciliation through the executor: remote entry validation, signatures checked ahead,
//! syncs between two executors (on different backends), convergence after a prefix delete made
//! apart, and the events a sync emits.

use super::*;

fn remote_entries_need_sync_enabled_and_a_valid_shape<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = Replicas::new(store, ReplicaConfig::default());
    r.import_namespace(now(T0), Capability::Write(secret.clone()))
        .unwrap();
    r.open(id, OpenOpts::default()).unwrap();
    let e = SignedEntry::new(&secret, &a, b"k", Record::new(Hash::new(b"v"), 1, T0));
    assert!(matches!(
        r.insert_remote(now(T0), id, e.clone(), peer(2), ContentStatus::Missing),
        Err(ReplicaError::SyncDisabled(_))
    ));
    assert!(matches!(
        r.sync_initial_message(id),
        Err(ReplicaError::SyncDisabled(_))
    ));
    r.set_sync(id, true).unwrap();
    r.insert_remote(now(T0), id, e, peer(2), ContentStatus::Missing)
        .unwrap();
    // Length without content is refused on the sync path too (iroh-docs checks it on gossip only).
    let bad = SignedEntry::new(&secret, &a, b"bad", Record::new(Hash::EMPTY, 7, T0));
    let msg = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: vec![(bad, ContentStatus::Missing)],
        have_local: true,
    })]);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, msg, peer(2), &mut outcome)
        .unwrap();
    assert_eq!(outcome.num_recv, 0, "an invalid entry is not received");
    assert!(r.get_exact(id, a.id(), b"bad", true).unwrap().is_none());
}

/// Deliberate difference from iroh-docs, found by the simulator's byzantine node: iroh-docs
/// counts every value of a sync message as received and takes `heads_received` over all of
/// them, valid or not. A hostile peer that sends one message of forged entries (far-future
/// timestamps, authors nobody has) thus completes a "sync with news": its victim registers it
/// as a useful peer and broadcasts a `SyncReport` with the forged heads to every neighbour,
/// and every neighbour finds news in it and dials a sync — one hostile message, a sync per
/// neighbour. Sheaf counts and reports only valid entries.
fn forged_values_are_not_received_nor_reported<B: Backend>(store: B) {
    let secret = ns(1);
    let (a, b) = (author(1), author(2));
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.set_sync(id, true).unwrap();
    set(&mut r, id, &a, b"held", b"v", T0 + 5);
    let entry =
        |key: &[u8], wall| SignedEntry::new(&secret, &a, key, Record::new(Hash::new(key), 1, wall));
    let valid = entry(b"new", T0);
    let older = entry(b"held", T0);
    let donor = entry(b"donor", T0);
    // Forgeries: newer content under another entry's signatures, and an author nobody has
    // with a timestamp in the future.
    let newer = SignedEntry::from_parts(
        *donor.signature(),
        Entry::new(valid.id().clone(), Record::new(Hash::new(b"x"), 1, T0 + 60)),
    );
    let stranger = SignedEntry::from_parts(
        *donor.signature(),
        Entry::new(
            RecordIdentifier::new(id, b.id(), b"k"),
            Record::new(Hash::new(b"y"), 1, T0 + 90),
        ),
    );
    let msg = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: [valid.clone(), older, newer, stranger]
            .into_iter()
            .map(|e| (e, ContentStatus::Complete))
            .collect(),
        have_local: true,
    })]);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, msg, peer(2), &mut outcome)
        .unwrap();
    assert_eq!(outcome.num_recv, 2, "the new and the older valid entry");
    assert_eq!(outcome.heads_received.get(&a.id()), Some(T0));
    assert_eq!(
        outcome.heads_received.get(&b.id()),
        None,
        "no forged author"
    );
    assert_eq!(r.get_exact(id, a.id(), b"new", false).unwrap(), Some(valid));
    // A message of forgeries only is no news at all.
    let only_forged = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: vec![(
            SignedEntry::from_parts(
                *donor.signature(),
                Entry::new(
                    RecordIdentifier::new(id, b.id(), b"z"),
                    Record::new(Hash::new(b"z"), 1, T0 + 99),
                ),
            ),
            ContentStatus::Complete,
        )],
        have_local: true,
    })]);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, only_forged, peer(2), &mut outcome)
        .unwrap();
    assert_eq!(outcome, SyncOutcome::default());
}

fn signatures_checked_ahead_change_no_result<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.set_sync(id, true).unwrap();
    set(&mut r, id, &a, b"held", b"newer", T0 + 5);
    let entry =
        |key: &[u8], wall| SignedEntry::new(&secret, &a, key, Record::new(Hash::new(key), 1, wall));
    let new = entry(b"new", T0);
    let good = entry(b"forged", T0);
    // The signatures of `good` over another record.
    let forged = SignedEntry::from_parts(
        *good.signature(),
        Entry::new(good.id().clone(), Record::new(Hash::new(b"other"), 1, T0)),
    );
    let held_older = entry(b"held", T0);
    let msg = |values: Vec<SignedEntry>| {
        Message::new(vec![MessagePart::RangeItem(RangeItem {
            range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
            values: values
                .into_iter()
                .map(|e| (e, ContentStatus::Missing))
                .collect(),
            have_local: true,
        })])
    };
    let message = msg(vec![new.clone(), forged.clone(), held_older]);
    let unchecked = r.unchecked_entries(id, &message).unwrap();
    assert_eq!(
        unchecked,
        vec![&new, &forged],
        "the held entry needs no check"
    );
    let checked = CheckedSignatures::check(unchecked);
    assert!(checked.contains(&new) && !checked.contains(&forged));
    // Vouching for `good` does not let the forgery with its signatures in.
    let mut vouched = checked.clone();
    vouched.extend(CheckedSignatures::check([&good]));
    r.add_checked_signatures(vouched);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, message, peer(2), &mut outcome)
        .unwrap();
    assert!(r.get_exact(id, a.id(), b"new", false).unwrap().is_some());
    assert!(r.get_exact(id, a.id(), b"forged", false).unwrap().is_none());
    // Without checks ahead, entries are verified as before.
    let later = entry(b"later", T0);
    r.sync_process_message(now(T0), id, msg(vec![later]), peer(2), &mut outcome)
        .unwrap();
    assert!(r.get_exact(id, a.id(), b"later", false).unwrap().is_some());
}

/// A stream of checks in progress is asked for each entry before the executor would check
/// it, in message order; what it hands over can only vouch for entries that verified.
fn checks_streamed_while_processing_change_no_result<B: Backend>(store: B) {
    struct Recording {
        asked: Vec<Vec<u8>>,
        /// Handed over for every entry, whatever was asked.
        vouch: SignedEntry,
    }
    impl CheckedStream for Recording {
        fn wait_for(&mut self, entry: &SignedEntry) -> Option<CheckedSignatures> {
            self.asked.push(entry.key().to_vec());
            let mut out = CheckedSignatures::check([entry]);
            out.extend(CheckedSignatures::check([&self.vouch]));
            Some(out)
        }
    }
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.set_sync(id, true).unwrap();
    let entry =
        |key: &[u8], wall| SignedEntry::new(&secret, &a, key, Record::new(Hash::new(key), 1, wall));
    let (first, good, last) = (entry(b"a", T0), entry(b"b", T0), entry(b"c", T0));
    let forged = SignedEntry::from_parts(
        *good.signature(),
        Entry::new(good.id().clone(), Record::new(Hash::new(b"other"), 1, T0)),
    );
    let values = [first, forged, last]
        .into_iter()
        .map(|e| (e, ContentStatus::Missing))
        .collect();
    let message = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values,
        have_local: true,
    })]);
    let mut stream = Recording {
        asked: Vec::new(),
        vouch: good,
    };
    let command = StoreCommand::SyncProcessMessage {
        namespace: id,
        message,
        from: peer(2),
        outcome: SyncOutcome::default(),
    };
    r.apply_with_checks(now(T0), command, &mut stream).unwrap();
    assert_eq!(stream.asked, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let keys: Vec<Vec<u8>> = query_all(r.indexed_mut(), id, &Query::all())
        .unwrap()
        .iter()
        .map(|e| e.key().to_vec())
        .collect();
    assert_eq!(
        keys,
        [b"a".to_vec(), b"c".to_vec()],
        "the forgery stays out"
    );
}

fn replica_sync<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut alice = replicas(store, &secret, &[&a]);
    let mut bob = replicas(MemBackend::new(), &secret, &[&a]);
    for k in ["ape", "eel", "fox", "gnu"] {
        set(&mut alice, id, &a, k.as_bytes(), b"a", T0);
    }
    for k in ["bee", "cat", "doe", "eel", "fox", "hog"] {
        set(&mut bob, id, &a, k.as_bytes(), b"b", T0 + 1);
    }
    let (_, _, oa, ob) = sync(&mut alice, &mut bob, id, T0 + 2);
    assert_eq!(oa.num_sent, ob.num_recv);
    assert_eq!(ob.num_sent, oa.num_recv);
    let all =
        |r: &mut Replicas<_>| keys_of(&query_all(r.indexed_mut(), id, &Query::all()).unwrap());
    let expected: Vec<_> = ["ape", "bee", "cat", "doe", "eel", "fox", "gnu", "hog"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), a.id()))
        .collect();
    assert_eq!(all(&mut alice), expected);
    assert_eq!(
        keys_of(&query_all(bob.indexed_mut(), id, &Query::all()).unwrap()),
        expected
    );
    // The later writes won on both sides.
    let eel = alice.get_exact(id, a.id(), b"eel", false).unwrap().unwrap();
    assert_eq!(eel.timestamp(), T0 + 1);
    assert_eq!(oa.heads_received.get(&a.id()), Some(T0 + 1));
}

/// The divergence iroh-docs cannot resolve: one side deleted "foo" while the other still has
/// an older "foo/x". Sheaf nodes end with the same set whichever side starts the sync.
fn converge_after_prefix_delete(x_store: impl Backend, y_store: impl Backend, x_starts: bool) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut x = replicas(x_store, &secret, &[&a]);
    let mut y = replicas(y_store, &secret, &[&a]);
    set(&mut x, id, &a, b"foo/x", b"old", T0);
    set(&mut y, id, &a, b"foo/x", b"old", T0);
    set(&mut y, id, &a, b"fooz", b"z", T0 + 2);
    x.delete_prefix(now(T0 + 1), id, a.id(), b"foo").unwrap();
    if x_starts {
        sync(&mut x, &mut y, id, T0 + 3);
    } else {
        sync(&mut y, &mut x, id, T0 + 3);
    }
    let xs = query_all(x.indexed_mut(), id, &Query::all().include_empty()).unwrap();
    let ys = query_all(y.indexed_mut(), id, &Query::all().include_empty()).unwrap();
    assert_eq!(xs, ys);
    let keys: Vec<Vec<u8>> = keys_of(&xs).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"foo".to_vec(), b"fooz".to_vec()]);
}

fn sync_after_prefix_delete_converges<B: Backend>(store: B) {
    converge_after_prefix_delete(store, MemBackend::new(), true);
    converge_after_prefix_delete(MemBackend::new(), MemBackend::new(), false);
}

fn no_remote_insert_event_for_obsolete_entries<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut alice = replicas(store, &secret, &[&a]);
    let mut bob = replicas(MemBackend::new(), &secret, &[&a]);
    set(&mut alice, id, &a, b"ape", b"1", T0);
    // Alice's initial message anchors the sync; before Bob answers, Alice overwrites "ape".
    let init = alice.sync_initial_message(id).unwrap();
    set(&mut bob, id, &a, b"ape", b"0", T0 - 1);
    let mut ob = SyncOutcome::default();
    let reply = bob
        .sync_process_message(now(T0), id, init, peer(1), &mut ob)
        .unwrap()
        .unwrap();
    set(&mut alice, id, &a, b"ape", b"2", T0 + 5);
    events(&mut alice);
    let mut oa = SyncOutcome::default();
    let back = alice
        .sync_process_message(now(T0 + 6), id, reply, peer(2), &mut oa)
        .unwrap();
    assert!(
        events(&mut alice).is_empty(),
        "bob's older ape must not surface as an insert"
    );
    assert_eq!((ob.num_sent, ob.num_recv), (1, 0));
    assert_eq!(
        (oa.num_sent, oa.num_recv),
        (back.as_ref().map_or(0, |m| m.value_count()), 1)
    );
}

/// A sync message holds the document's index for [`SYNC_HOLD`]; `SyncEnded` (the last
/// session of the document ended) lets it go at once, and over budget it is evicted.
fn sync_holds_end_with_the_last_session<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let config = ReplicaConfig {
        index_budget: 0,
        ..Default::default()
    };
    let mut r = Replicas::new(store, config);
    r.import_namespace(now(T0), Capability::Write(secret.clone()))
        .unwrap();
    r.import_author(now(T0), a.clone()).unwrap();
    let opts = OpenOpts {
        sync: true,
        subscribe: false,
    };
    r.open(id, opts).unwrap();
    for k in ["a", "b", "c"] {
        set(&mut r, id, &a, k.as_bytes(), b"v", T0);
    }
    let hold = SYNC_HOLD.as_micros() as u64;
    r.apply(now(T0), StoreCommand::SyncInitialMessage(id))
        .unwrap();
    assert_eq!(r.index_stats().pinned, 1, "held while syncing");
    r.handle_timeout(now(T0 + hold - 1)).unwrap();
    assert_eq!(r.index_stats().pinned, 1, "held until the deadline");
    r.apply(now(T0 + 1), StoreCommand::SyncEnded(id)).unwrap();
    let stats = r.index_stats();
    assert_eq!(
        (stats.pinned, stats.loaded),
        (0, 0),
        "released and evicted: {stats:?}"
    );
    r.apply(now(T0 + 2), StoreCommand::SyncEnded(id)).unwrap();
    assert_eq!(r.index_stats().pinned, 0, "idempotent");

    // Without `SyncEnded`, the hold ends at its deadline.
    r.apply(now(T0 + 3), StoreCommand::SyncInitialMessage(id))
        .unwrap();
    r.handle_timeout(now(T0 + 3 + hold - 1)).unwrap();
    assert_eq!(r.index_stats().pinned, 1);
    r.handle_timeout(now(T0 + 3 + hold)).unwrap();
    assert_eq!(r.index_stats().pinned, 0);
}

for_each_backend!(
    sync_holds_end_with_the_last_session,
    remote_entries_need_sync_enabled_and_a_valid_shape,
    forged_values_are_not_received_nor_reported,
    signatures_checked_ahead_change_no_result,
    checks_streamed_while_processing_change_no_result,
    replica_sync,
    sync_after_prefix_delete_converges,
    no_remote_insert_event_for_obsolete_entries,
);
