//! Store replies on the API path, checked for their kind.
//!
//! Every store command has exactly one kind of successful reply. The API unwraps it with
//! [`expect_reply!`]; a reply of any other kind is a bug between the engine and the store
//! executor, and surfaces as [`crate::DocsError::UnexpectedReply`] naming both kinds, never as
//! a default value that would look like an empty answer.

use sheaf_core::replica::StoreResponse;

/// The name of a reply's kind, for [`crate::DocsError::UnexpectedReply`].
pub(crate) fn kind(reply: &StoreResponse) -> &'static str {
    match reply {
        StoreResponse::Done => "Done",
        StoreResponse::Bool(_) => "Bool",
        StoreResponse::Author(_) => "Author",
        StoreResponse::Authors(_) => "Authors",
        StoreResponse::Imported(_) => "Imported",
        StoreResponse::Namespaces(_) => "Namespaces",
        StoreResponse::Hashes(_) => "Hashes",
        StoreResponse::State(_) => "State",
        StoreResponse::Inserted(_) => "Inserted",
        StoreResponse::InsertedMany(_) => "InsertedMany",
        StoreResponse::Removed(_) => "Removed",
        StoreResponse::Message(_) => "Message",
        StoreResponse::Synced { .. } => "Synced",
        StoreResponse::Peers(_) => "Peers",
        StoreResponse::Entry(_) => "Entry",
        StoreResponse::Page(_) => "Page",
        StoreResponse::Secret(_) => "Secret",
        StoreResponse::News(_) => "News",
        StoreResponse::Policy(_) => "Policy",
        StoreResponse::MissingContent { .. } => "MissingContent",
        StoreResponse::V2(_) => "V2",
    }
}

/// `expect_reply!(reply, Variant)`: the payload of `StoreResponse::Variant(payload)`, or
/// [`crate::DocsError::UnexpectedReply`].
macro_rules! expect_reply {
    ($reply:expr, $variant:ident) => {
        match $reply {
            sheaf_core::replica::StoreResponse::$variant(value) => Ok(value),
            other => Err($crate::DocsError::UnexpectedReply {
                expected: stringify!($variant),
                got: $crate::reply::kind(&other),
            }),
        }
    };
}

pub(crate) use expect_reply;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DocsError;

    #[test]
    fn the_expected_kind_is_unwrapped() {
        let r: Result<Vec<_>, DocsError> = expect_reply!(StoreResponse::Authors(vec![]), Authors);
        assert!(matches!(r, Ok(v) if v.is_empty()));
    }

    #[test]
    fn another_kind_is_a_typed_error_not_a_default() {
        let r: Result<Vec<sheaf_core::AuthorId>, DocsError> =
            expect_reply!(StoreResponse::Done, Authors);
        assert!(matches!(
            r,
            Err(DocsError::UnexpectedReply {
                expected: "Authors",
                got: "Done"
            })
        ));
    }
}
