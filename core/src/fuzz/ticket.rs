//! The `decode_ticket` target: [`DocTicket`] bytes and strings.

use crate::wire::{ticket::TICKET_PREFIX, DocTicket};

/// Checks a parsed ticket: both forms round-trip to a canonical fixpoint.
fn check_ticket(ticket: &DocTicket, from_len: usize) {
    assert!(!ticket.nodes.is_empty(), "a parsed ticket names a node");
    let bytes = ticket.to_bytes();
    // Address sets are re-sorted and deduplicated and varints made minimal, so the bytes may
    // differ from the input, but never grow, and they are a fixpoint.
    assert!(
        bytes.len() <= from_len,
        "{} bytes from {from_len}",
        bytes.len()
    );
    let back = DocTicket::from_bytes(&bytes).expect("encoded ticket parses");
    assert_eq!(&back, ticket);
    assert_eq!(back.to_bytes(), bytes);

    let s = ticket.to_string();
    assert!(s.starts_with(TICKET_PREFIX));
    assert!(!s.bytes().any(|b| b.is_ascii_uppercase()), "{s}");
    assert_eq!(s.parse::<DocTicket>().as_ref(), Ok(ticket));
    // The string is the prefix and the base32 of the bytes.
    let rest = s[TICKET_PREFIX.len()..].to_ascii_uppercase();
    assert_eq!(
        data_encoding::BASE32_NOPAD.decode(rest.as_bytes()).as_ref(),
        Ok(&bytes)
    );
}

/// Fuzz body: `data` as ticket bytes, as a ticket string, and wrapped into a ticket string.
/// See the [module docs](super).
pub fn decode_ticket(data: &[u8]) {
    let from_bytes = DocTicket::from_bytes(data);
    if let Ok(ticket) = &from_bytes {
        check_ticket(ticket, data.len());
    }

    // The same bytes as a ticket string must parse to the same result, in either case.
    let mut s = TICKET_PREFIX.to_owned();
    data_encoding::BASE32_NOPAD.encode_append(data, &mut s);
    assert_eq!(s.parse::<DocTicket>(), from_bytes);
    let lower = s.to_ascii_lowercase();
    assert_eq!(lower.parse::<DocTicket>(), from_bytes);
    if let Ok(ticket) = &from_bytes {
        if ticket.to_bytes() == data {
            assert_eq!(ticket.to_string(), lower);
        }
    }

    // `data` itself as a string.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<DocTicket>();
    if let Some(rest) = text.strip_prefix(TICKET_PREFIX) {
        match data_encoding::BASE32_NOPAD.decode(rest.to_ascii_uppercase().as_bytes()) {
            // The string path is exactly the byte path on the decoded bytes.
            Ok(bytes) => {
                let via_bytes = DocTicket::from_bytes(&bytes);
                assert_eq!(parsed, via_bytes);
                if let Ok(ticket) = &parsed {
                    check_ticket(ticket, bytes.len());
                    if ticket.to_bytes() == bytes {
                        assert_eq!(ticket.to_string(), text.to_ascii_lowercase());
                    }
                }
            }
            Err(_) => assert!(parsed.is_err()),
        }
    } else {
        assert!(parsed.is_err());
    }
}
