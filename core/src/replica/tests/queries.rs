//! Queries through the executor: filters, sort orders, latest-per-key, tombstones, and paging
//! under small budgets with cursors.

use super::*;

fn queries<B: Backend>(store: B) {
    let secret = ns(1);
    // Authors ordered a1 < a2 < a3 by id.
    let mut authors: Vec<Author> = (1..=3u8).map(author).collect();
    authors.sort_by_key(|a| a.id());
    let (a1, a2, a3) = (&authors[0], &authors[1], &authors[2]);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[a1, a2, a3]);
    set(&mut r, id, a2, b"hi/world", b"a2", T0);
    set(&mut r, id, a1, b"hi/world", b"a1", T0 + 1);
    set(&mut r, id, a2, b"hi/moon", b"a2", T0 + 2);
    set(&mut r, id, a3, b"hi", b"a3", T0 + 3);
    let k = |key: &str, a: &Author| (key.as_bytes().to_vec(), a.id());
    let q = |r: &mut Replicas<B>, q: Query| keys_of(&query_all(r.indexed_mut(), id, &q).unwrap());

    assert_eq!(
        q(&mut r, Query::all()),
        vec![
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi/world", a2),
            k("hi", a3)
        ]
    );
    assert_eq!(
        q(&mut r, Query::single_latest_per_key()),
        vec![k("hi", a3), k("hi/moon", a2), k("hi/world", a1)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::single_latest_per_key().sort_direction(SortDirection::Desc)
        ),
        vec![k("hi/world", a1), k("hi/moon", a2), k("hi", a3)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Asc)
        ),
        vec![
            k("hi", a3),
            k("hi/moon", a2),
            k("hi/world", a1),
            k("hi/world", a2)
        ]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Desc)
        ),
        vec![
            k("hi/world", a2),
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi", a3)
        ]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::AuthorKey, SortDirection::Desc)
        ),
        vec![
            k("hi", a3),
            k("hi/world", a2),
            k("hi/moon", a2),
            k("hi/world", a1)
        ]
    );
    assert_eq!(
        q(&mut r, Query::key_prefix("hi/").offset(1).limit(1)),
        vec![k("hi/moon", a2)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::key_prefix("hi/")
                .sort_by(SortBy::KeyAuthor, SortDirection::Asc)
                .limit(2)
        ),
        vec![k("hi/moon", a2), k("hi/world", a1)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::single_latest_per_key()
                .with_key_prefix("hi/")
                .limit(1)
        ),
        vec![k("hi/moon", a2)]
    );
    assert_eq!(
        q(&mut r, Query::single_latest_per_key().with_author(a2.id())),
        vec![k("hi/moon", a2), k("hi/world", a2)]
    );
    assert_eq!(
        q(&mut r, Query::author(a2.id()).with_key_exact("hi/moon")),
        vec![k("hi/moon", a2)]
    );

    r.delete_prefix(now(T0 + 4), id, a2.id(), b"hi/world")
        .unwrap();
    assert_eq!(
        q(&mut r, Query::all()),
        vec![k("hi/world", a1), k("hi/moon", a2), k("hi", a3)]
    );
    assert_eq!(
        q(&mut r, Query::all().include_empty()),
        vec![
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi/world", a2),
            k("hi", a3)
        ]
    );
    // The latest entry for hi/world is now a2's tombstone: the key disappears.
    assert_eq!(
        q(&mut r, Query::single_latest_per_key()),
        vec![k("hi", a3), k("hi/moon", a2)]
    );
}

fn queries_page_across_budgets<B: Backend>(store: B) {
    let secret = ns(1);
    let authors: Vec<Author> = (1..=4u8).map(author).collect();
    let id = secret.id();
    let refs: Vec<&Author> = authors.iter().collect();
    let mut r = replicas(store, &secret, &refs);
    for (i, a) in authors.iter().enumerate() {
        for k in 0..25u64 {
            let key = format!("k{:02}", (k * 7 + i as u64) % 30);
            set(
                &mut r,
                id,
                a,
                key.as_bytes(),
                key.as_bytes(),
                T0 + k * 4 + i as u64,
            );
        }
    }
    for query in [
        Query::all(),
        Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Desc),
        Query::single_latest_per_key(),
        Query::single_latest_per_key()
            .sort_direction(SortDirection::Desc)
            .offset(3)
            .limit(7),
        Query::key_prefix("k1").offset(2),
    ] {
        let expected = query_all(r.indexed_mut(), id, &query).unwrap();
        for budget in [1, 2, 3, 5, 1000] {
            let mut got = Vec::new();
            let mut cursor = None;
            for _ in 0..10_000 {
                let page = run_query(r.indexed_mut(), id, &query, cursor, budget).unwrap();
                assert!(page.entries.len() <= budget.max(4), "budget {budget}");
                got.extend(page.entries);
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
            assert_eq!(got, expected, "{query:?} budget {budget}");
        }
    }
}

for_each_backend!(queries, queries_page_across_budgets,);
