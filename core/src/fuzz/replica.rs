//! The `replica_sync` target: a [`Replicas`] executor fed reconciliation messages by a hostile
//! peer.
//!
//! Input format (all of it optional: missing bytes read as zeros, the run ends when the input
//! does):
//!
//! * byte 0: the [`SyncConfig`] (split factor, leaf size, byte budget) and whether a download
//!   policy is set;
//! * then messages, each `op ‖ time step ‖ body`: `op % 4` is 0 for raw bytes (`len u16 le ‖
//!   bytes`, decoded with [`Message::from_wire`]; undecodable bytes are skipped), 1 or 2 for a
//!   message built from the following bytes (parts with ranges between derived identifiers,
//!   arbitrary or near-miss fingerprints, and signed entries), 3 for our last reply sent back
//!   with its `have_local` flags toggled. The time step advances both clocks by `step × 1 ms`.
//!
//! The namespace and first author are the keys of the golden vectors in `wire/golden.rs`
//! (namespace secret `[0xb2; 32]`, author `[0xa1; 32]`), so the golden transcript frames carry
//! entries that validate here. Authors `[2; 32]` and `[3; 32]` are also local; `[4; 32]` signs
//! remote entries only; namespace `[5; 32]` is a foreign document.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Mutex, OnceLock},
};

use super::Input;
use crate::{
    entry::{EntrySignature, Record, RecordIdentifier, SignedEntry, MAX_TIMESTAMP_FUTURE_SHIFT},
    hash::{Hash, PeerId},
    keys::{Author, Capability, NamespaceId, NamespaceSecret},
    ranger::{
        ContentStatus, Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem,
        SyncConfig, SyncLimit,
    },
    replica::{OpenOpts, ReplicaConfig, ReplicaError, ReplicaEvent, Replicas, SyncOutcome},
    store::{
        put_prefix_aware, Backend, DownloadPolicy, FilterKind, Indexed, MemBackend, PutOutcome,
    },
    time::{Mono, Now},
    wire::{encode_frame, Decode, Encode, FrameDecoder, SyncMessage, DEFAULT_MAX_FRAME_LEN},
    AuthorId,
};

/// 2023-11-14 in µs: the timestamp of the golden entries.
const T0: u64 = 1_700_000_000_000_000;
/// Most messages processed per run.
const MAX_MESSAGES: usize = 64;
/// Most entries sent to the replica per run.
const MAX_VALUES: usize = 256;
/// Most parts of a built message.
const MAX_PARTS: u8 = 4;
/// Most values of a built `RangeItem`.
const MAX_ITEM_VALUES: u8 = 5;

/// The seed entries after the first: `(author index, key, value)`, written at `T0 + 2 ms`,
/// `+ 3 ms`, …, then a tombstone by author 2 at `"c"` (removing `"c"` and `"c/d"`). The first,
/// `"a"` by author 0 at `T0 + 1 ms`, goes through [`Replicas::insert_local`].
const SEEDS: [(usize, &[u8], &[u8]); 4] = [
    (0, b"a/b", b"two"),
    (1, b"b", b"three"),
    (2, b"c", b"four"),
    (2, b"c/d", b"five"),
];

/// What every run shares, computed once per process: key derivation and signing, which would
/// otherwise dominate the cost of a run. All of it is a pure function of constants.
struct Fixture {
    keys: Keys,
    /// [`SEEDS`] and the tombstone, signed.
    seeds: Vec<SignedEntry>,
    /// An entry of the foreign document.
    foreign_entry: SignedEntry,
}

impl Fixture {
    fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let keys = Keys::new();
            let mut seeds = Vec::new();
            let mut wall = T0 + 1000;
            for (author, key, value) in SEEDS {
                wall += 1000;
                let record = Record::new(Hash::new(value), value.len() as u64, wall);
                seeds.push(SignedEntry::new(
                    &keys.ns,
                    &keys.authors[author],
                    key,
                    record,
                ));
            }
            let tombstone = Record::empty(wall + 1000);
            seeds.push(SignedEntry::new(
                &keys.ns,
                &keys.authors[2],
                b"c",
                tombstone,
            ));
            let record = Record::new(Hash::new(b"x"), 1, T0);
            let foreign_entry = SignedEntry::new(&keys.foreign, &keys.authors[0], b"a", record);
            Fixture {
                keys,
                seeds,
                foreign_entry,
            }
        })
    }
}

/// Entries known to verify, as their encodings (bounded; look-ups only, so the set's order
/// never shows).
fn verified_memo() -> &'static Mutex<HashSet<Vec<u8>>> {
    static MEMO: OnceLock<Mutex<HashSet<Vec<u8>>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Most entries a memo remembers before it starts over.
const MEMO_LEN: usize = 1 << 16;

/// Asserts that `e` verifies. Verification is deterministic, so an entry seen to verify before
/// (in this process) is not checked again: it would cost two signature checks per entry and
/// message.
fn assert_verifies(e: &SignedEntry) {
    let wire = e.to_wire();
    let memo = verified_memo();
    if memo
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&wire)
    {
        return;
    }
    if let Err(err) = e.verify() {
        panic!("entry {e:?} does not verify: {err}");
    }
    remember_verified(wire);
}

fn remember_verified(wire: Vec<u8>) {
    let mut memo = verified_memo().lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= MEMO_LEN {
        memo.clear();
    }
    memo.insert(wire);
}

/// [`SignedEntry::new`] with the fixture's keys, remembered across runs.
///
/// Signing is deterministic, so a remembered entry is exactly the one signing would give; the
/// fuzzer's mutations keep most entries of an input, and signing them anew would take a third
/// of every run. (Look-ups only: the map's order never shows.)
fn sign_memo(foreign: bool, author: usize, key: &[u8], record: Record) -> SignedEntry {
    type Memo = HashMap<(bool, usize, Vec<u8>, Record), SignedEntry>;
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    let memo = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    let lookup = (foreign, author, key.to_vec(), record);
    if let Some(e) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&lookup) {
        return e.clone();
    }
    let keys = &Fixture::get().keys;
    let ns = if foreign { &keys.foreign } else { &keys.ns };
    let entry = SignedEntry::new(ns, &keys.authors[author], key, record);
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= MEMO_LEN {
        memo.clear();
    }
    memo.insert(lookup, entry.clone());
    entry
}

/// The fixed keys of a run.
struct Keys {
    ns: NamespaceSecret,
    foreign: NamespaceSecret,
    /// The first three are imported locally; the last signs remote entries only.
    authors: [Author; 4],
}

impl Keys {
    fn new() -> Self {
        Self {
            ns: NamespaceSecret::from_bytes(&[0xb2; 32]),
            foreign: NamespaceSecret::from_bytes(&[5; 32]),
            authors: [0xa1, 2, 3, 4].map(|b| Author::from_bytes(&[b; 32])),
        }
    }

    fn author_index(&self, id: AuthorId) -> Option<usize> {
        self.authors.iter().position(|a| a.id() == id)
    }
}

/// The replica under test and everything the invariants compare against.
struct Harness {
    keys: &'static Keys,
    ns: NamespaceId,
    peer: PeerId,
    replicas: Replicas<MemBackend>,
    now: Now,
    outcome: SyncOutcome,
    /// The store's entries after the last message, ascending.
    stored: Vec<SignedEntry>,
    /// Store heads after the last message.
    heads: BTreeMap<AuthorId, u64>,
    last_reply: Option<Message>,
    values_sent: usize,
    replies_values: usize,
}

fn all() -> Range {
    Range::new(RecordIdentifier::zero(), RecordIdentifier::zero())
}

impl Harness {
    fn new(config_byte: u8) -> Self {
        let fixture = Fixture::get();
        let keys = &fixture.keys;
        let ns = keys.ns.id();
        let sync = SyncConfig {
            split_factor: 2 + usize::from(config_byte % 8),
            max_set_size: usize::from((config_byte >> 3) % 3),
            max_message_bytes: [usize::MAX, 16 * 1024 * 1024, 300, 1200]
                [usize::from(config_byte >> 5) % 4],
            ..SyncConfig::default()
        };
        let config = ReplicaConfig {
            sync,
            ..ReplicaConfig::default()
        };
        let mut replicas = Replicas::new(MemBackend::new(), config);
        let mut now = Now::new(Mono(0), T0);
        replicas
            .import_namespace(now, Capability::Write(keys.ns.clone()))
            .expect("import namespace");
        replicas
            .import_namespace(now, Capability::Write(keys.foreign.clone()))
            .expect("import foreign namespace");
        for author in &keys.authors[..3] {
            replicas
                .import_author(now, author.clone())
                .expect("import author");
        }
        let opts = OpenOpts {
            sync: true,
            subscribe: true,
        };
        replicas.open(ns, opts).expect("open");
        replicas
            .open(keys.foreign.id(), opts)
            .expect("open foreign");
        if config_byte & 0x80 != 0 {
            let policy = DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(
                bytes::Bytes::from_static(b"a"),
            )]);
            replicas
                .set_download_policy(now, ns, policy)
                .expect("set policy");
        }
        now.mono.0 += 1000;
        now.wall_micros += 1000;
        replicas
            .insert_local(now, ns, keys.authors[0].id(), b"a", Hash::new(b"one"), 3)
            .expect("seed insert");
        assert!(matches!(
            replicas.poll_event(),
            Some(ReplicaEvent::LocalInsert { .. })
        ));
        assert_eq!(replicas.poll_event(), None);
        // The other seeds are signed once per process and written to the store directly, with
        // the same prefix semantics (the last, a tombstone at "c", removes "c" and "c/d").
        for (i, e) in fixture.seeds.iter().enumerate() {
            let outcome = put_prefix_aware(replicas.indexed_mut(), e.clone()).expect("seed");
            let removed = if i + 1 == fixture.seeds.len() { 2 } else { 0 };
            assert_eq!(outcome, PutOutcome::Inserted { removed });
            now.mono.0 += 1000;
            now.wall_micros += 1000;
        }
        // The foreign document holds one entry that must never leak into ours.
        let outcome = put_prefix_aware(replicas.indexed_mut(), fixture.foreign_entry.clone());
        assert_eq!(outcome.expect("seed"), PutOutcome::Inserted { removed: 0 });
        let mut h = Self {
            keys,
            ns,
            peer: PeerId::from_bytes([9; 32]),
            replicas,
            now,
            outcome: SyncOutcome::default(),
            stored: Vec::new(),
            heads: BTreeMap::new(),
            last_reply: None,
            values_sent: 0,
            replies_values: 0,
        };
        h.check_store(&[]);
        h
    }

    fn store(&mut self) -> &mut Indexed<MemBackend> {
        self.replicas.indexed_mut()
    }

    // ---- building messages from fuzz bytes ---------------------------------------------------

    fn stored_pick(&self, b: u8) -> Option<&SignedEntry> {
        (!self.stored.is_empty()).then(|| &self.stored[usize::from(b) % self.stored.len()])
    }

    fn key(input: &mut Input<'_>) -> Vec<u8> {
        const ALPHABET: [u8; 5] = [b'a', b'b', b'/', 0x00, 0xff];
        let n = input.u8();
        if n == 0xff {
            // Just over the default key limit.
            return vec![b'k'; crate::DEFAULT_MAX_KEY_LEN + 1];
        }
        (0..n % 4)
            .map(|_| ALPHABET[usize::from(input.u8()) % ALPHABET.len()])
            .collect()
    }

    /// A range bound: the zero id, a stored id (maybe nudged), or a fresh one anywhere.
    fn id(&self, input: &mut Input<'_>) -> RecordIdentifier {
        let b = input.u8();
        match b % 8 {
            0 => RecordIdentifier::zero(),
            1..=3 => match self.stored_pick(input.u8()) {
                Some(e) => e.id().clone(),
                None => RecordIdentifier::zero(),
            },
            4 => match self.stored_pick(input.u8()) {
                Some(e) => {
                    let mut bytes = e.id().as_bytes().to_vec();
                    match input.u8() % 3 {
                        0 if bytes.len() > 64 => {
                            bytes.pop();
                        }
                        1 => *bytes.last_mut().expect("ids hold 64 bytes") ^= 1,
                        _ => bytes.push(input.u8()),
                    }
                    RecordIdentifier::from_bytes(bytes).expect("at least 64 bytes")
                }
                None => RecordIdentifier::zero(),
            },
            _ => {
                let ns = match (b >> 3) % 5 {
                    0 | 1 => self.ns,
                    2 => NamespaceId::from_bytes([0; 32]),
                    3 => NamespaceId::from_bytes([0xff; 32]),
                    _ => self.keys.foreign.id(),
                };
                let author = match input.u8() % 6 {
                    4 => AuthorId::from_bytes([0; 32]),
                    5 => AuthorId::from_bytes([0xff; 32]),
                    i => self.keys.authors[usize::from(i)].id(),
                };
                RecordIdentifier::new(ns, author, Self::key(input))
            }
        }
    }

    fn fingerprint(&mut self, input: &mut Input<'_>, range: &Range) -> Fingerprint {
        let ns = self.ns;
        match input.u8() % 4 {
            0 => Fingerprint::EMPTY,
            1 => self
                .store()
                .range_fingerprint(ns, range)
                .expect("fingerprint"),
            2 => {
                // Off by one entry: the peer holds one more or one less.
                let ours = self
                    .store()
                    .range_fingerprint(ns, range)
                    .expect("fingerprint");
                match self.stored_pick(input.u8()) {
                    Some(e) => ours.xor(&e.fingerprint()),
                    None => ours,
                }
            }
            _ => Fingerprint(input.array32()),
        }
    }

    fn timestamp(&self, input: &mut Input<'_>) -> u64 {
        let t = input.u8();
        let small = u64::from(t >> 2);
        let wall = self.now.wall_micros;
        match t % 4 {
            0 => T0 + small,
            1 => wall - small * 1000,
            2 => wall + MAX_TIMESTAMP_FUTURE_SHIFT - small,
            _ => match self.stored_pick(input.u8()) {
                Some(e) if small & 1 == 0 => e.timestamp(),
                _ => wall + MAX_TIMESTAMP_FUTURE_SHIFT + 1 + small,
            },
        }
    }

    /// A signed entry: usually valid for our namespace, sometimes not.
    fn entry(&self, input: &mut Input<'_>) -> SignedEntry {
        let mode = input.u8();
        let near = self
            .stored_pick(input.u8())
            .and_then(|e| Some((e, self.keys.author_index(e.author())?)));
        let (author, key) = match (mode % 4, near) {
            // Near a stored entry: the same key, a prefix of it or an extension.
            (0, Some((e, author))) => {
                let mut key = e.key().to_vec();
                match (mode >> 2) % 3 {
                    0 => {}
                    1 => {
                        key.pop();
                    }
                    _ => key.push(input.u8()),
                }
                (author, key)
            }
            _ => (usize::from(mode >> 2) % 4, Self::key(input)),
        };
        let ts = self.timestamp(input);
        let v = input.u8();
        let record = match v % 8 {
            0 => Record::empty(ts),
            // Breaks the empty-entry rule: zero length with a non-empty hash.
            1 => Record::new(Hash::new([v]), 0, ts),
            _ => Record::new(Hash::new([v % 4]), u64::from(1 + (v >> 5)), ts),
        };
        let entry = sign_memo(mode >> 4 == 0xf, author, &key, record);
        if mode >> 4 == 0xe {
            // A flipped signature bit.
            let mut a = entry.signature().author_bytes();
            let mut n = entry.signature().namespace_bytes();
            let i = usize::from(input.u8());
            if i < 128 {
                a[i % 64] ^= 1;
            } else {
                n[i % 64] ^= 1;
            }
            return SignedEntry::from_parts(EntrySignature::from_bytes(a, n), entry.into_entry());
        }
        entry
    }

    fn build_message(&mut self, input: &mut Input<'_>, budget: usize) -> Message {
        let mut parts = Vec::new();
        let mut values_left = budget;
        for _ in 0..=input.u8() % MAX_PARTS {
            let kind = input.u8();
            let range = Range::new(self.id(input), self.id(input));
            if kind & 1 == 0 {
                let fingerprint = self.fingerprint(input, &range);
                parts.push(MessagePart::RangeFingerprint(RangeFingerprint {
                    range,
                    fingerprint,
                }));
            } else {
                let n = usize::from(input.u8() % (MAX_ITEM_VALUES + 1)).min(values_left);
                values_left -= n;
                let values = (0..n)
                    .map(|_| {
                        let entry = self.entry(input);
                        let status = match input.u8() % 3 {
                            0 => ContentStatus::Complete,
                            1 => ContentStatus::Incomplete,
                            _ => ContentStatus::Missing,
                        };
                        (entry, status)
                    })
                    .collect();
                parts.push(MessagePart::RangeItem(RangeItem {
                    range,
                    values,
                    have_local: kind & 2 != 0,
                }));
            }
        }
        Message::new(parts)
    }

    // ---- processing and invariants -----------------------------------------------------------

    fn process(&mut self, message: Message) {
        let received = message.value_count();
        self.values_sent += received;
        let ranges: Vec<Range> = message.parts.iter().map(|p| p.range().clone()).collect();
        let num_recv = self.outcome.num_recv;
        let reply = match self.replicas.sync_process_message(
            self.now,
            self.ns,
            message,
            self.peer,
            &mut self.outcome,
        ) {
            Ok(reply) => reply,
            // Refused before any entry was checked or stored: nothing counts as received.
            Err(ReplicaError::Limit(SyncLimit::OverlappingParts)) => {
                assert_eq!(self.outcome.num_recv, num_recv);
                return;
            }
            Err(e) => panic!("sync_process_message failed on a MemBackend: {e}"),
        };
        self.replicas
            .handle_timeout(self.now)
            .expect("MemBackend commits");
        // Only valid values count as received (invalid ones are dropped unreported).
        assert!(self.outcome.num_recv <= num_recv + received);
        assert!(self.outcome.num_recv <= self.values_sent);

        // Events: at most one per received value, each a remote insert from the peer.
        let policy = self.replicas.get_download_policy(self.ns).expect("policy");
        let mut events = 0;
        while let Some(event) = self.replicas.poll_event() {
            events += 1;
            match event {
                ReplicaEvent::RemoteInsert {
                    namespace,
                    entry,
                    from,
                    should_download,
                    ..
                } => {
                    assert_eq!(namespace, self.ns);
                    assert_eq!(entry.namespace(), self.ns);
                    assert_eq!(from, self.peer);
                    assert_eq!(
                        should_download,
                        !entry.is_empty() && policy.matches(entry.key())
                    );
                    assert_verifies(&entry);
                }
                ReplicaEvent::LocalInsert { .. } => panic!("a sync message caused a local insert"),
            }
        }
        assert!(
            events <= received,
            "{events} events queued for {received} values received"
        );

        if let Some(reply) = &reply {
            self.check_reply(reply);
            self.replies_values += reply.value_count();
        }
        assert_eq!(self.outcome.num_sent, self.replies_values);
        self.check_store(&ranges);
        self.last_reply = reply;
    }

    fn check_reply(&self, reply: &Message) {
        assert!(!reply.parts.is_empty(), "an empty reply is sent as none");
        let wire = reply.to_wire();
        assert_eq!(Message::from_wire(&wire).as_ref(), Ok(reply));
        let msg = SyncMessage::Sync(reply.clone());
        let mut frame = Vec::new();
        encode_frame(&msg, DEFAULT_MAX_FRAME_LEN, &mut frame).expect("reply fits a frame");
        let mut d = FrameDecoder::default();
        d.feed(&frame).expect("feed");
        assert_eq!(d.next_message(), Ok(Some(msg)));
        assert_eq!(d.finish(), Ok(()));
        for part in &reply.parts {
            if let MessagePart::RangeItem(item) = part {
                for (e, _) in &item.values {
                    assert_eq!(e.namespace(), self.ns, "reply leaks another namespace");
                    assert!(
                        item.range.contains(e.id()),
                        "reply value {e:?} outside its range {:?}",
                        item.range
                    );
                    assert_verifies(e);
                }
            }
        }
    }

    /// The store invariants; `ranges` are the ranges of the message just processed.
    fn check_store(&mut self, ranges: &[Range]) {
        let ns = self.ns;
        let store = self.replicas.indexed_mut();
        let entries = store
            .range_entries(ns, &all(), 0, usize::MAX)
            .expect("entries");
        assert_eq!(store.namespace_len(ns).expect("len"), entries.len());
        assert!(
            entries.windows(2).all(|w| w[0].id() < w[1].id()),
            "entries out of order"
        );
        let fold = |es: &mut dyn Iterator<Item = &SignedEntry>| {
            es.fold(Fingerprint::EMPTY, |f, e| f.xor(&e.fingerprint()))
        };
        assert_eq!(
            store.range_fingerprint(ns, &all()).expect("fingerprint"),
            fold(&mut entries.iter())
        );
        for range in ranges {
            let inside: Vec<&SignedEntry> =
                entries.iter().filter(|e| range.contains(e.id())).collect();
            assert_eq!(store.range_len(ns, range).expect("len"), inside.len());
            assert_eq!(
                store.range_fingerprint(ns, range).expect("fingerprint"),
                fold(&mut inside.iter().copied())
            );
        }
        assert_eq!(
            store.first_id(ns).expect("first"),
            entries.first().map(|e| e.id().clone())
        );

        // Prefix semantics: no entry is dominated by an entry of its author at a prefix key.
        for e in &entries {
            for len in 0..e.key().len() {
                if let Some(parent) = store.get(ns, e.author(), &e.key()[..len]).expect("get") {
                    assert!(
                        parent.record() < e.record(),
                        "{e:?} is stored under the newer or equal prefix entry {parent:?}"
                    );
                }
            }
        }

        // Heads: at least every stored timestamp, and never regressing.
        let heads = store.author_heads(ns).expect("heads");
        for e in &entries {
            assert!(heads.get(&e.author()) >= Some(e.timestamp()));
        }
        for (author, ts) in &self.heads {
            assert!(
                heads.get(author) >= Some(*ts),
                "heads of {author:?} regressed"
            );
        }
        self.heads = heads.iter().map(|(a, t)| (*a, *t)).collect();

        // Every entry verifies and passed the limits when it came in.
        let limits = self.replicas.config().limits;
        let latest = self.now.wall_micros + limits.max_future_shift_micros;
        for e in &entries {
            assert_eq!(e.namespace(), ns);
            assert!(e.key().len() <= limits.max_key_len);
            assert!(e.timestamp() <= latest, "{e:?} is too far in the future");
            assert!(
                e.validate_empty().is_ok(),
                "{e:?} breaks the empty-entry rule"
            );
            assert_verifies(e);
        }
        // The foreign document is untouched by a sync of ours.
        let foreign = self.keys.foreign.id();
        assert_eq!(
            self.replicas
                .indexed_mut()
                .namespace_len(foreign)
                .expect("len"),
            1
        );
        self.stored = entries;
    }

    fn advance(&mut self, step: u8) {
        let micros = u64::from(step) * 1000;
        self.now = Now::new(
            Mono(self.now.mono.0 + micros),
            self.now.wall_micros + micros,
        );
    }
}

/// Fuzz body: `data` is a sequence of sync messages from a peer. See the [module docs](super)
/// and the input format above.
pub fn replica_sync(data: &[u8]) {
    let mut input = Input::new(data);
    let mut h = Harness::new(input.u8());
    for _ in 0..MAX_MESSAGES {
        if input.is_empty() || h.values_sent >= MAX_VALUES {
            break;
        }
        let op = input.u8();
        h.advance(input.u8());
        let budget = MAX_VALUES - h.values_sent;
        let message = match op % 4 {
            0 => {
                let len = usize::from(input.u16());
                match Message::from_wire(input.take(len)) {
                    Ok(m) if m.value_count() <= budget => m,
                    _ => continue,
                }
            }
            3 => match h.last_reply.take() {
                Some(mut m) => {
                    for part in &mut m.parts {
                        if let MessagePart::RangeItem(item) = part {
                            item.have_local = !item.have_local;
                        }
                    }
                    if m.value_count() > budget {
                        continue;
                    }
                    m
                }
                None => continue,
            },
            _ => h.build_message(&mut input, budget),
        };
        h.process(message);
    }
}
