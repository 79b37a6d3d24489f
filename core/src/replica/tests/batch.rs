//! Batches of local writes (`insert_local_many`): the same entries as one `insert_local`
//! each, per-write outcomes under newer entries, and the checks that refuse a whole batch
//! before anything is written.

use super::*;

fn write(key: &[u8], value: &[u8]) -> LocalWrite {
    LocalWrite {
        key: Bytes::copy_from_slice(key),
        hash: Hash::new(value),
        len: value.len() as u64,
    }
}

fn whole_namespace(r: &mut Replicas<impl Backend>, id: NamespaceId) -> Vec<SignedEntry> {
    query_all(&mut r.indexed, id, &Query::all()).unwrap()
}

fn a_batch_writes_what_single_writes_write<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut batch = replicas(store, &secret, &[&a]);
    let mut single = replicas(MemBackend::default(), &secret, &[&a]);
    let writes: Vec<LocalWrite> = (0..100u32)
        .map(|i| write(format!("k{i:03}").as_bytes(), &i.to_be_bytes()))
        .collect();
    let out = batch
        .insert_local_many(now(T0), id, a.id(), &writes)
        .unwrap();
    for w in &writes {
        single
            .insert_local(now(T0), id, a.id(), &w.key, w.hash, w.len)
            .unwrap();
    }
    let written: Vec<SignedEntry> = out.into_iter().map(Option::unwrap).collect();
    assert_eq!(written, whole_namespace(&mut single, id), "in key order");
    assert_eq!(whole_namespace(&mut batch, id), written);
    assert_eq!(events(&mut batch).len(), 100, "one event per written entry");
}

fn newer_entries_keep_single_writes_out<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    // A tombstone at "p" written later than the batch covers "p/1" but not "q".
    r.delete_prefix(now(T0 + 10), id, a.id(), b"p").unwrap();
    let out = r
        .insert_local_many(
            now(T0),
            id,
            a.id(),
            &[write(b"q", b"1"), write(b"p/1", b"2"), write(b"r", b"3")],
        )
        .unwrap();
    let written: Vec<bool> = out.iter().map(Option::is_some).collect();
    assert_eq!(written, [true, false, true]);
    let keys: Vec<Vec<u8>> = whole_namespace(&mut r, id)
        .iter()
        .map(|e| e.key().to_vec())
        .collect();
    assert_eq!(keys, [b"q".to_vec(), b"r".to_vec()]);
}

fn bad_batches_write_nothing<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    let ok = write(b"fine", b"v");

    let dup = [ok.clone(), write(b"twice", b"1"), write(b"twice", b"2")];
    let err = r.insert_local_many(now(T0), id, a.id(), &dup).unwrap_err();
    assert!(
        matches!(&err, ReplicaError::DuplicateKey(k) if &k[..] == b"twice"),
        "{err}"
    );

    let big: Vec<LocalWrite> = (0..=MAX_LOCAL_BATCH as u32)
        .map(|i| write(&i.to_be_bytes(), b"v"))
        .collect();
    let err = r.insert_local_many(now(T0), id, a.id(), &big).unwrap_err();
    assert!(matches!(
        err,
        ReplicaError::BatchTooLarge { len, max } if len == MAX_LOCAL_BATCH + 1 && max == MAX_LOCAL_BATCH
    ));

    let long_key = vec![b'k'; r.config.limits.max_key_len + 1];
    let invalid = [ok.clone(), write(&long_key, b"v")];
    let err = r
        .insert_local_many(now(T0), id, a.id(), &invalid)
        .unwrap_err();
    assert!(matches!(
        err,
        ReplicaError::Validation(ValidationFailure::KeyTooLarge { .. })
    ));

    let empty = [
        ok.clone(),
        LocalWrite {
            key: Bytes::from_static(b"e"),
            hash: Hash::EMPTY,
            len: 0,
        },
    ];
    let err = r
        .insert_local_many(now(T0), id, a.id(), &empty)
        .unwrap_err();
    assert!(matches!(
        err,
        ReplicaError::Validation(ValidationFailure::EntryIsEmpty)
    ));

    let stranger = author(2);
    let err = r
        .insert_local_many(now(T0), id, stranger.id(), std::slice::from_ref(&ok))
        .unwrap_err();
    assert!(matches!(err, ReplicaError::AuthorNotFound(_)));

    assert!(whole_namespace(&mut r, id).is_empty(), "nothing written");
    assert!(events(&mut r).is_empty());
    assert_eq!(
        r.insert_local_many(now(T0), id, a.id(), &[]).unwrap(),
        Vec::<Option<SignedEntry>>::new(),
        "an empty batch is fine"
    );
}

fn read_only_documents_refuse_batches<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = Replicas::new(store, ReplicaConfig::default());
    r.import_author(now(T0), a.clone()).unwrap();
    r.import_namespace(now(T0), Capability::Read(id)).unwrap();
    r.open(id, OpenOpts::default()).unwrap();
    let err = r
        .insert_local_many(now(T0), id, a.id(), &[write(b"k", b"v")])
        .unwrap_err();
    assert!(matches!(err, ReplicaError::ReadOnly));
}

fn batches_run_as_commands<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    let reply = r
        .apply(
            now(T0),
            StoreCommand::InsertLocalMany {
                namespace: id,
                author: a.id(),
                writes: vec![write(b"a", b"1"), write(b"b", b"2")],
            },
        )
        .unwrap();
    let StoreResponse::InsertedMany(out) = reply else {
        panic!("wrong reply: {reply:?}");
    };
    assert_eq!(out.len(), 2);
    assert_eq!(whole_namespace(&mut r, id).len(), 2);
}

for_each_backend!(
    a_batch_writes_what_single_writes_write,
    newer_entries_keep_single_writes_out,
    bad_batches_write_nothing,
    read_only_documents_refuse_batches,
    batches_run_as_commands,
);
